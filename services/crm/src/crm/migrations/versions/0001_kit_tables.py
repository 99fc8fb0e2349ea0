"""Inbox and outbox tables of the crm service.

Revision ID: 0001
Revises:
"""

from alembic import op

from sbkit.db.migrate import create_kit_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Create the kit tables."""
    create_kit_tables(op)


def downgrade() -> None:
    """Drop the kit tables."""
    op.drop_table("outbox")
    op.drop_table("inbox")
