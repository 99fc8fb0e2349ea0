"""Queues, agents, tickets, ticket messages, durable timers, classification rules.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from sbkit.db.tables import BigId

revision = "0002"
down_revision = "0001"
TS = sa.DateTime(timezone=True)
TABLES = ("queues", "agents", "tickets", "ticket_messages", "timers", "rules")


def upgrade() -> None:
    """Create routing's tables."""

    op.create_table(
        "queues",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("policy", sa.String(20), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
    )

    op.create_table(
        "agents",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("presence", sa.String(10), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("load", sa.Integer, nullable=False),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("languages", sa.JSON, nullable=False),
        sa.Column("queues", sa.JSON, nullable=False),
        sa.Column("queue_keys", sa.String(4000), nullable=False, server_default=""),
        sa.Column("idle_since", TS, nullable=True),
        sa.Column("last_assigned_at", TS, nullable=True),
        sa.Column("presence_at", TS, nullable=False),
    )

    op.create_table(
        "tickets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("queue_id", sa.String(100), nullable=True),
        sa.Column("agent_id", sa.String(100), nullable=True),
        sa.Column("last_agent_id", sa.String(100), nullable=True),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("recipient", sa.JSON, nullable=True),
        sa.Column("last_provider_message_id", sa.String(300), nullable=True),
        sa.Column("subject", sa.String(998), nullable=True),
        sa.Column("tier", sa.String(50), nullable=True),
        sa.Column("category", sa.String(30), nullable=False),
        sa.Column("sentiment", sa.String(10), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("queued_at", TS, nullable=True),
        sa.Column("cycle_started_at", TS, nullable=False),
        sa.Column("first_response_at", TS, nullable=True),
        sa.Column("awaiting_since", TS, nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("pending_since", TS, nullable=True),
        sa.Column("paused_ms", BigId, nullable=False),
        sa.Column("original_customer_id", sa.String(64), nullable=True),
        sa.Column("merge_id", sa.String(64), nullable=True),
        sa.Column("merged_into", sa.String(64), nullable=True),
        sa.Index("ix_tickets_customer", "tenant_id", "customer_id", "status"),
        sa.Index("ix_tickets_waiting", "tenant_id", "queue_id", "agent_id", "status"),
    )

    op.create_table(
        "ticket_messages",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("origin_ticket_id", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("channel", sa.String(20), nullable=True),
        sa.Column("thread_id", sa.String(998), nullable=True),
        sa.Column("author", sa.String(100), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Index("ix_ticket_messages_thread", "tenant_id", "thread_id"),
        sa.Index("ix_ticket_messages_message", "tenant_id", "message_id"),
    )

    op.create_table(
        "timers",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("metric", sa.String(20), nullable=True),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("fire_at", TS, nullable=False),
        sa.Column("done", sa.Boolean, nullable=False),
    )

    op.create_table(
        "rules",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("category", sa.String(30), nullable=False),
        sa.Column("pattern", sa.String(500), nullable=False),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("weight", sa.Float, nullable=False),
    )
    op.create_index("ix_ticket_messages_ticket_id", "ticket_messages", ["ticket_id"])
    op.create_index("ix_timers_ticket_id", "timers", ["ticket_id"])
    op.create_index("ix_timers_fire_at", "timers", ["fire_at"])
    op.create_index("ix_rules_tenant_id", "rules", ["tenant_id"])


def downgrade() -> None:
    """Drop routing's tables."""
    for name in reversed(TABLES):
        op.drop_table(name)
