"""Agents' skills and languages as jsonb on PostgreSQL: a decision looks up levels in every
online agent's documents, and `json` re-parses the text on each lookup.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"

_COLUMNS = ("skills", "languages")


def upgrade() -> None:
    """json → jsonb (PostgreSQL only; SQLite keeps its JSON text)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in _COLUMNS:
        op.alter_column("agents", column, type_=JSONB(), postgresql_using=f"{column}::jsonb")


def downgrade() -> None:
    """Back to 0003."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in _COLUMNS:
        op.alter_column("agents", column, type_=sa.JSON(), postgresql_using=f"{column}::json")
