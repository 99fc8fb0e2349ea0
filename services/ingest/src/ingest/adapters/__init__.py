"""Adapters of the ingest service: ORM tables, repositories, provider clients."""
