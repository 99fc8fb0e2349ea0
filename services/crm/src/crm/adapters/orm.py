"""Tables of the crm service (its own schema); the kit's inbox and outbox included.

Rows a customer owns (identities, attributes, consents, orders, timeline) carry `customer_id`
and are moved by merges; `merges.moved` records their ids so an undo moves exactly them back.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from sbkit.db.tables import BigId, KitTables
from sbkit.db.types import UtcDateTime

metadata = MetaData()
kit = KitTables(metadata)

TS = UtcDateTime()


def _owned(
    name: str, *cols: Column[object] | UniqueConstraint | Index, customer_index: bool = True
) -> Table:
    """A table of rows owned by one customer (moved by merges); `customer_index=False` when
    another index starts with customer_id."""
    return Table(
        name,
        metadata,
        Column("id", BigId, primary_key=True, autoincrement=True),
        Column("tenant_id", String(64), nullable=False),
        Column("customer_id", String(36), nullable=False, index=customer_index),
        *cols,
    )


customers = Table(
    "customers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("status", String(10), nullable=False),
    Column("merged_into", String(36), nullable=True, index=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("erased_at", TS, nullable=True),
)

identities = _owned(
    "identities",
    Column("kind", String(20), nullable=False),
    Column("scope", String(200), nullable=False, server_default=""),
    Column("value", String(320), nullable=False),
    Column("source", String(20), nullable=False),
    Column("source_ref", String(300), nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("tenant_id", "kind", "scope", "value", name="uq_identities_handle"),
)

attributes = _owned(
    "attributes",
    Column("field", String(50), nullable=False),
    Column("value", String(1000), nullable=False),
    Column("source", String(50), nullable=False),
    Column("source_ref", String(300), nullable=False),
    Column("recorded_at", TS, nullable=False),
)

consents = _owned(
    "consents",
    Column("channel", String(20), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("source", String(50), nullable=False),
    Column("source_ref", String(300), nullable=False),
    Column("recorded_at", TS, nullable=False),
)

orders = _owned(
    "orders",
    Column("order_id", String(200), nullable=False),
    Column("status", String(50), nullable=True),
    Column("placed_at", TS, nullable=False),
    Column("currency", String(3), nullable=True),
    Column("total_minor", BigId, nullable=True),
    Column("shipment_ids", JSON, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("tenant_id", "order_id", name="uq_orders_order"),
)

timeline = _owned(
    "timeline",
    Column("kind", String(30), nullable=False),
    Column("ref", String(300), nullable=False),
    Column("source_event_id", String(128), nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("channel", String(20), nullable=True),
    Column("summary", Text, nullable=True),
    UniqueConstraint("tenant_id", "source_event_id", name="uq_timeline_source_event"),
    Index("ix_timeline_customer_time", "customer_id", "occurred_at", "id"),
    # only messages: the card's last contact without walking orders, scans, notifications
    Index(
        "ix_timeline_last_message",
        "customer_id",
        "occurred_at",
        "id",
        postgresql_where=text("kind = 'message'"),
        sqlite_where=text("kind = 'message'"),
    ),
    customer_index=False,  # ix_timeline_customer_time serves every lookup by customer (0005)
)

shipments = Table(
    "shipments",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("shipment_id", String(200), primary_key=True),
    Column("order_id", String(200), nullable=True, index=True),
    Column("carrier", String(50), nullable=False),
    Column("status", String(30), nullable=False),
    Column("occurred_at", TS, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("ticket_id", String(64), primary_key=True),
    Column("customer_id", String(36), nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("category", String(30), nullable=True),
    Column("subject", String(998), nullable=True),
    Column("channel", String(20), nullable=True),
    Column("order_id", String(200), nullable=True),
    Column("opened_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

merges = Table(
    "merges",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("survivor_id", String(36), nullable=False, index=True),
    Column("merged_id", String(36), nullable=False, index=True),
    Column("provenance", JSON, nullable=False),
    Column("moved", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("undone_at", TS, nullable=True),
    Column("undo_provenance", JSON, nullable=True),
)

tombstones = Table(
    "tombstones",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("handle_hash", String(64), primary_key=True),
    Column("customer_id", String(36), nullable=False),
    Column("erased_at", TS, nullable=False),
)

OWNED = {
    "identities": identities,
    "attributes": attributes,
    "consents": consents,
    "orders": orders,
    "timeline": timeline,
}
