"""Alembic environment of the ingest service."""

from alembic import context

from ingest.adapters.orm import metadata
from sbkit.db.migrate import run_env

run_env(context, metadata)
