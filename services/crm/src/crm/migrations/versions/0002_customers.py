"""Customers, identities, attributes, consents, orders, shipments, timeline, merges, tombstones.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from sbkit.db.tables import BigId

revision = "0002"
down_revision = "0001"

TS = sa.DateTime(timezone=True)
OWNED = ("identities", "attributes", "consents", "orders", "timeline")


def _owned(name: str, *cols: sa.Column | sa.UniqueConstraint | sa.Index) -> None:
    op.create_table(
        name,
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(36), nullable=False),
        *cols,
    )
    op.create_index(f"ix_{name}_customer_id", name, ["customer_id"])


def upgrade() -> None:
    """Create crm's tables."""
    op.create_table(
        "customers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("merged_into", sa.String(36), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("erased_at", TS, nullable=True),
    )
    op.create_index("ix_customers_merged_into", "customers", ["merged_into"])
    _owned(
        "identities",
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False, server_default=""),
        sa.Column("value", sa.String(320), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("source_ref", sa.String(300), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "kind", "scope", "value", name="uq_identities_handle"),
    )
    _facts()
    _rest()


def _facts() -> None:
    """Attributes, consents, orders and the timeline: rows a merge moves."""
    _owned(
        "attributes",
        sa.Column("field", sa.String(50), nullable=False),
        sa.Column("value", sa.String(1000), nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("source_ref", sa.String(300), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    _owned(
        "consents",
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("source_ref", sa.String(300), nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    _owned(
        "orders",
        sa.Column("order_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(50), nullable=True),
        sa.Column("placed_at", TS, nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("total_minor", BigId, nullable=True),
        sa.Column("shipment_ids", sa.JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("tenant_id", "order_id", name="uq_orders_order"),
    )
    _owned(
        "timeline",
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("source_event_id", sa.String(128), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("channel", sa.String(20), nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
        sa.UniqueConstraint("tenant_id", "source_event_id", name="uq_timeline_source_event"),
    )
    op.create_index("ix_timeline_customer_time", "timeline", ["customer_id", "occurred_at", "id"])


def _rest() -> None:
    op.create_table(
        "shipments",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("shipment_id", sa.String(200), primary_key=True),
        sa.Column("order_id", sa.String(200), nullable=True),
        sa.Column("carrier", sa.String(50), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
    )
    op.create_index("ix_shipments_order_id", "shipments", ["order_id"])
    op.create_table(
        "merges",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("survivor_id", sa.String(36), nullable=False),
        sa.Column("merged_id", sa.String(36), nullable=False),
        sa.Column("provenance", sa.JSON, nullable=False),
        sa.Column("moved", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("undone_at", TS, nullable=True),
        sa.Column("undo_provenance", sa.JSON, nullable=True),
    )
    op.create_index("ix_merges_survivor_id", "merges", ["survivor_id"])
    op.create_index("ix_merges_merged_id", "merges", ["merged_id"])
    op.create_table(
        "tombstones",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("handle_hash", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(36), nullable=False),
        sa.Column("erased_at", TS, nullable=False),
    )


def downgrade() -> None:
    """Drop them."""
    for name in ("tombstones", "merges", "shipments", *reversed(OWNED), "customers"):
        op.drop_table(name)
