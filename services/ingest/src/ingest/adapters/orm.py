"""Tables of the ingest service (its own schema); the kit's inbox and outbox included."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, UniqueConstraint

from sbkit.db.tables import KitTables

metadata = MetaData()
kit = KitTables(metadata)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("provider_message_id", String(300), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("tenant_id", "channel", "provider_message_id", name="uq_messages_natural"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("settings", JSON, nullable=False),
    # Write-only: never rendered by the API nor logged (see README "Secrets").
    Column("secrets", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Natural ids of everything else accepted once (receipts, calls, orders, shipments, surveys,
# webhook nonces): the unique key makes a redelivery or a concurrent duplicate a no-op.
accepted = Table(
    "accepted",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("natural_id", String(400), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
