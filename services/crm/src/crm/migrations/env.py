"""Alembic environment of the crm service."""

from alembic import context

from crm.adapters.orm import metadata
from sbkit.db.migrate import run_env

run_env(context, metadata)
