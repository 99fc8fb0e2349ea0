"""Facts of derived KPI entities (cases, cycles, alerts) and the presence log of agents.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    """Create the facts and presence tables."""
    op.create_table(
        "kpi_facts",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
        sa.Column("applied", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key", name="pk_kpi_facts"),
    )
    op.create_index("ix_kpi_facts_customer", "kpi_facts", ["tenant_id", "customer_id"])
    op.create_table(
        "presence_log",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("presence", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "agent", "at", name="pk_presence_log"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("presence_log")
    op.drop_index("ix_kpi_facts_customer", "kpi_facts")
    op.drop_table("kpi_facts")
