"""crm merges as the read model applied them, so an undo restores both customers.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    """Create merges."""
    op.create_table(
        "merges",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("merge_id", sa.String(64), primary_key=True),
        sa.Column("survivor_id", sa.String(64), nullable=False, index=True),
        sa.Column("merged_id", sa.String(64), nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("undone", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    """Drop merges."""
    op.drop_table("merges")
