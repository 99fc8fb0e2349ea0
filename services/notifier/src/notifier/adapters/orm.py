"""Tables of the notifier service (its own schema); the kit's inbox and outbox included."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from sbkit.db.tables import BigId, KitTables
from sbkit.db.types import UtcDateTime

metadata = MetaData()
kit = KitTables(metadata)


TS = UtcDateTime()


def _tenant() -> Column[str]:
    return Column("tenant_id", String(64), primary_key=True)


orders = Table(
    "orders",
    metadata,
    _tenant(),
    Column("order_id", String(200), primary_key=True),
    Column("customer_email", String(320)),
    Column("customer_phone", String(32)),
    Column("language", String(8)),
    Column("timezone", String(64)),
    Column("promised_to", Date),
    # the person was erased: a replayed or re-sent event of this order stores no contact again
    Column("contacts_erased", Boolean, nullable=False, default=False),
)
shipments = Table(
    "shipments",
    metadata,
    _tenant(),
    Column("shipment_id", String(200), primary_key=True),
    Column("order_id", String(200), index=True),
    Column("carrier", String(50), nullable=False),
    Column("tracking_number", String(100), nullable=False),
    Column("status", String(30), nullable=False),
    Column("last_scan_at", TS),
    Column("estimate_to", TS),
    Column("dispatch_by", TS),
    Column("dispatched", Boolean, nullable=False),
)
episodes = Table(
    "episodes",
    metadata,
    _tenant(),
    Column("shipment_id", String(200), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("open", Boolean, nullable=False),
    Column("reason", String(50), nullable=False),
    Column("alerts", Integer, nullable=False),
    Column("alerted_estimate", TS),
    Column("opened_at", TS, nullable=False),
    Column("closed_at", TS),
)
gap_stats = Table(
    "gap_stats",
    metadata,
    _tenant(),
    Column("carrier", String(50), primary_key=True),
    Column("lane", String(30), primary_key=True),
    Column("counts", JSON, nullable=False),
)
gap_samples = Table(  # appended by consumers, folded into gap_stats by the timer worker
    "gap_samples",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("carrier", String(50), nullable=False),
    Column("lane", String(30), nullable=False),
    Column("gap_s", Integer, nullable=False),
)
customers = Table(
    "customers",
    metadata,
    _tenant(),
    Column("customer_id", String(64), primary_key=True),
    Column("language", String(8)),
    Column("timezone", String(64)),
    Column("preferred_channel", String(20)),
    Column("opted_out", JSON, nullable=False),
)
erased_customers = Table(  # ids only (no personal data): their old customer.* events stay void
    "erased_customers",
    metadata,
    _tenant(),
    Column("customer_id", String(64), primary_key=True),
    Column("erased_at", TS, nullable=False),
)
handles = Table(
    "handles",
    metadata,
    _tenant(),
    Column("kind", String(20), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
)
merges = Table(  # what a crm merge changed in the read model, so its undo restores both
    "merges",
    metadata,
    _tenant(),
    Column("merge_id", String(64), primary_key=True),
    Column("survivor_id", String(64), nullable=False, index=True),
    Column("merged_id", String(64), nullable=False),
    Column("before", JSON, nullable=False),
    Column("undone", Boolean, nullable=False),
)
cases = Table(
    "cases",
    metadata,
    _tenant(),
    Column("ticket_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("order_id", String(200), index=True),
    Column("open", Boolean, nullable=False),
)
notifications = Table(
    "notifications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("alert_key", String(300), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("order_id", String(200)),
    Column("shipment_id", String(200), nullable=False),
    Column("episode", Integer, nullable=False),
    Column("delay_reason", String(50), nullable=False),
    Column("estimate", TS),
    Column("status", String(20), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("channel", String(20)),
    Column("channels_left", JSON, nullable=False),
    Column("recipient", String(320)),
    Column("language", String(8)),
    Column("not_before", TS),
    Column("provider", String(50)),
    Column("provider_message_id", String(300)),
    Column("attempts", Integer, nullable=False),
    Column("note", Text),
    Column("history", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("uq_notifications_alert", "tenant_id", "alert_key", unique=True),
    Index("ix_notifications_customer", "tenant_id", "customer_id"),
    Index("ix_notifications_provider_id", "provider_message_id"),
)
policies = Table(
    "policies", metadata, Column("tenant_id", String(64), primary_key=True), Column("doc", JSON)
)
templates = Table(
    "templates",
    metadata,
    _tenant(),
    Column("template_id", String(64), primary_key=True),
    Column("language", String(8), nullable=False),
    Column("subject", String(998), nullable=False),
    Column("body", Text, nullable=False),
)
timers = Table(
    "timers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("ref", String(200), nullable=False),
    Column("due_at", TS, nullable=False, index=True),
    Column("armed_for", TS),
    Index("uq_timers_ref", "tenant_id", "kind", "ref", unique=True),
)
