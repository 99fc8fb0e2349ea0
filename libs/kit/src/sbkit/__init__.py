"""Shared infrastructure kit: bus, db, auth, settings, logging, observability, health."""
