"""KPI components per (tenant, interval, queue, channel, agent, name, bin) and per-tenant thresholds.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    """Create analytics' tables."""
    op.create_table(
        "kpi_components",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("interval_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("agent", sa.String(100), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "interval_start",
            "queue",
            "channel",
            "agent",
            "name",
            "bin",
            name="pk_kpi_components",
        ),
    )
    op.create_table(
        "kpi_thresholds",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("kpi", sa.String(64), nullable=False),
        sa.Column("green_at", sa.Float, nullable=False),
        sa.Column("red_at", sa.Float, nullable=False),
        sa.Column("direction", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kpi", name="pk_kpi_thresholds"),
    )


def downgrade() -> None:
    """Drop analytics' tables."""
    op.drop_table("kpi_thresholds")
    op.drop_table("kpi_components")
