"""Database kit: engines for PostgreSQL and SQLite, unit of work, inbox, outbox relay, migrations."""
