"""Alembic environment of the routing service."""

from alembic import context

from routing.adapters.orm import metadata
from sbkit.db.migrate import run_env

run_env(context, metadata)
