"""crm's customer merges as analytics sees them (`kpi_merges`), and each derived entity's original
customer (`kpi_facts.origin_id`): entities are grouped under the customer their origin resolves to
through the merges not undone, so a merge moves them to the survivor and an undo gives them back.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    """Create the merges table; give every stored entity its customer as origin."""
    op.create_table(
        "kpi_merges",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("merge_id", sa.String(64), nullable=False),
        sa.Column("survivor_id", sa.String(64), nullable=False),
        sa.Column("merged_id", sa.String(64), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "merge_id", name="pk_kpi_merges"),
    )
    op.create_index("ix_kpi_merges_merged", "kpi_merges", ["tenant_id", "merged_id"])
    op.add_column("kpi_facts", sa.Column("origin_id", sa.String(64), nullable=True))
    op.execute("UPDATE kpi_facts SET origin_id = customer_id")


def downgrade() -> None:
    """Drop them (entities stay under the customer they were last grouped under)."""
    with op.batch_alter_table("kpi_facts") as batch:
        batch.drop_column("origin_id")
    op.drop_index("ix_kpi_merges_merged", "kpi_merges")
    op.drop_table("kpi_merges")
