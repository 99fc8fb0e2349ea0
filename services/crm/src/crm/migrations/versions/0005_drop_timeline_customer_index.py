"""Drop the timeline's single-column customer index: (customer_id, occurred_at, id) covers it.

Every lookup of a customer's entries (pages, export, erasure, merges moving rows) can use the
composite index's leading column, so the single-column index only cost writes: each attributed
message inserted into five indexes of the largest table, now four.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Drop the redundant index."""
    op.drop_index("ix_timeline_customer_id", "timeline", if_exists=True)


def downgrade() -> None:
    """Create it again."""
    op.create_index("ix_timeline_customer_id", "timeline", ["customer_id"])
