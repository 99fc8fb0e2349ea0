"""Erasure tombstones: orders whose contacts were erased, and the erased customer ids, so a
replayed or re-sent old event does not bring the person back into the read model.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    """Add orders.contacts_erased and erased_customers."""
    op.add_column(
        "orders",
        sa.Column("contacts_erased", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "erased_customers",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("erased_customers")
    op.drop_column("orders", "contacts_erased")
