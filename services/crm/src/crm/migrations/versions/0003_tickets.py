"""Tickets as the card shows them (routing's ticket events): open cases and the last contact reason.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the tickets table."""
    op.create_table(
        "tickets",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("category", sa.String(30), nullable=True),
        sa.Column("subject", sa.String(998), nullable=True),
        sa.Column("channel", sa.String(20), nullable=True),
        sa.Column("order_id", sa.String(200), nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_tickets_customer_id", "tickets", ["customer_id"])


def downgrade() -> None:
    """Drop it."""
    op.drop_table("tickets")
