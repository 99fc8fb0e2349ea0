"""Scan gaps are appended as samples (no shared row locked by every consumer transaction) and
folded into gap_stats by the timer worker.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from sbkit.db.tables import BigId

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Create gap_samples."""
    op.create_table(
        "gap_samples",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("carrier", sa.String(50), nullable=False),
        sa.Column("lane", sa.String(30), nullable=False),
        sa.Column("gap_s", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    """Drop gap_samples."""
    op.drop_table("gap_samples")
