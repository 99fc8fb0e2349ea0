"""Tables of the routing service (its own schema); the kit's inbox and outbox included."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from sbkit.db.tables import BigId, KitTables
from sbkit.db.types import UtcDateTime

metadata = MetaData()
kit = KitTables(metadata)


TS = UtcDateTime()
# jsonb on PostgreSQL: every decision looks levels up in these (json re-parses the text each time)
LEVELS = JSON().with_variant(JSONB(), "postgresql")
# partial indexes: the backlog (unowned active cases), a customer's last agent, pending timers
_WAITING = text("agent_id IS NULL AND status IN ('new', 'open', 'pending')")
_OWNED_BEFORE = text("last_agent_id IS NOT NULL")
_PENDING = text("done = false")

queues = Table(
    "queues",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("policy", String(20), nullable=False),
    Column("config", JSON, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("presence", String(10), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("load", Integer, nullable=False),
    Column("skills", LEVELS, nullable=False),
    Column("languages", LEVELS, nullable=False),
    Column("queues", JSON, nullable=False),
    # "|q1|q2|" (empty: every queue) so eligibility can be filtered in SQL on any dialect
    Column("queue_keys", String(4000), nullable=False, default="", server_default=""),
    Column("idle_since", TS, nullable=True),
    Column("last_assigned_at", TS, nullable=True),
    Column("presence_at", TS, nullable=False),
)

tickets = Table(
    "tickets",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("status", String(10), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("queue_id", String(100), nullable=True),
    Column("agent_id", String(100), nullable=True),
    Column("last_agent_id", String(100), nullable=True),
    Column("weight", Integer, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("recipient", JSON, nullable=True),
    Column("last_provider_message_id", String(300), nullable=True),
    Column("subject", String(998), nullable=True),
    Column("tier", String(50), nullable=True),
    Column("category", String(30), nullable=False),
    Column("sentiment", String(10), nullable=False),
    Column("priority", String(10), nullable=False),
    Column("language", String(8), nullable=True),
    Column("confidence", Float, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("queued_at", TS, nullable=True),
    Column("cycle_started_at", TS, nullable=False),
    Column("first_response_at", TS, nullable=True),
    Column("awaiting_since", TS, nullable=True),
    Column("resolved_at", TS, nullable=True),
    Column("pending_since", TS, nullable=True),
    Column("paused_ms", BigId, nullable=False),
    Column("original_customer_id", String(64), nullable=True),
    Column("merge_id", String(64), nullable=True),
    Column("merged_into", String(64), nullable=True),
    Column("order_id", String(200), nullable=True),
    Index("ix_tickets_customer", "tenant_id", "customer_id", "status"),
    Index("ix_tickets_waiting", "tenant_id", "queue_id", "agent_id", "status"),
    Index(
        "ix_tickets_backlog",
        "tenant_id",
        "queue_id",
        "queued_at",
        postgresql_where=_WAITING,
        sqlite_where=_WAITING,
    ),
    Index(
        "ix_tickets_last_agent",
        "tenant_id",
        "customer_id",
        "updated_at",
        postgresql_where=_OWNED_BEFORE,
        sqlite_where=_OWNED_BEFORE,
    ),
)

ticket_messages = Table(
    "ticket_messages",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("ticket_id", String(64), nullable=False, index=True),
    Column("message_id", String(64), nullable=False),
    Column("origin_ticket_id", String(64), nullable=False),
    Column("direction", String(10), nullable=False),
    Column("channel", String(20), nullable=True),
    Column("thread_id", String(998), nullable=True),
    Column("author", String(100), nullable=True),
    Column("text", Text, nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_ticket_messages_thread", "tenant_id", "thread_id"),
    Index("ix_ticket_messages_message", "tenant_id", "message_id"),
)

timers = Table(
    "timers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("ticket_id", String(64), nullable=False, index=True),
    Column("kind", String(20), nullable=False),
    Column("metric", String(20), nullable=True),
    Column("cycle", Integer, nullable=False),
    Column("due_at", TS, nullable=False),
    Column("fire_at", TS, nullable=False),
    Column("done", Boolean, nullable=False),
    Index("ix_timers_due", "fire_at", postgresql_where=_PENDING, sqlite_where=_PENDING),
)

# Bumped with every change of a tenant's queues or rules: processes cache both per version.
config_versions = Table(
    "config_versions",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

rules = Table(
    "rules",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("category", String(30), nullable=False),
    Column("pattern", String(500), nullable=False),
    Column("language", String(8), nullable=True),
    Column("weight", Float, nullable=False),
)
