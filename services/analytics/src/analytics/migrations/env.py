"""Alembic environment of the analytics service."""

from alembic import context

from analytics.adapters.orm import metadata
from sbkit.db.migrate import run_env

run_env(context, metadata)
