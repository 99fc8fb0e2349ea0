"""Alembic environment of the notifier service."""

from alembic import context

from notifier.adapters.orm import metadata
from sbkit.db.migrate import run_env

run_env(context, metadata)
