"""Faster decisions: config versions (cache invalidation), partial indexes, a case's order.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

_WAITING = sa.text("agent_id IS NULL AND status IN ('new', 'open', 'pending')")
_PENDING = sa.text("done = false")


def upgrade() -> None:
    """Add config_versions, tickets.order_id, and indexes for the backlog and due timers."""
    op.create_table(
        "config_versions",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.add_column("tickets", sa.Column("order_id", sa.String(200), nullable=True))
    op.create_index(
        "ix_tickets_backlog",
        "tickets",
        ["tenant_id", "queue_id", "queued_at"],
        postgresql_where=_WAITING,
        sqlite_where=_WAITING,
    )
    op.create_index(
        "ix_tickets_last_agent",
        "tickets",
        ["tenant_id", "customer_id", "updated_at"],
        postgresql_where=sa.text("last_agent_id IS NOT NULL"),
        sqlite_where=sa.text("last_agent_id IS NOT NULL"),
    )
    op.create_index(
        "ix_timers_due", "timers", ["fire_at"], postgresql_where=_PENDING, sqlite_where=_PENDING
    )
    op.drop_index("ix_timers_fire_at", table_name="timers")


def downgrade() -> None:
    """Back to 0002."""
    op.create_index("ix_timers_fire_at", "timers", ["fire_at"])
    op.drop_index("ix_timers_due", table_name="timers")
    op.drop_index("ix_tickets_last_agent", table_name="tickets")
    op.drop_index("ix_tickets_backlog", table_name="tickets")
    op.drop_column("tickets", "order_id")
    op.drop_table("config_versions")
