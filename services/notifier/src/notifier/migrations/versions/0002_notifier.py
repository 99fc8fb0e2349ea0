"""Orders, shipments, delay episodes, learned scan gaps, customer read model, open cases,
notifications with their decisions, policies, templates and durable timers.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from sbkit.db.tables import BigId

revision = "0002"
down_revision = "0001"
TS = sa.DateTime(timezone=True)
TABLES = (
    "orders", "shipments", "episodes", "gap_stats", "customers", "handles", "cases",
    "notifications", "policies", "templates", "timers",
)  # fmt: skip


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(64), primary_key=True)


def _s(name: str, size: int, **kw: object) -> sa.Column[str]:
    return sa.Column(name, sa.String(size), **kw)  # type: ignore[arg-type]


def upgrade() -> None:
    """Create notifier's tables."""
    op.create_table(
        "orders", _tenant(), _s("order_id", 200, primary_key=True), _s("customer_email", 320),
        _s("customer_phone", 32), _s("language", 8), _s("timezone", 64),
        sa.Column("promised_to", sa.Date),
    )  # fmt: skip
    op.create_table(
        "shipments", _tenant(), _s("shipment_id", 200, primary_key=True),
        _s("order_id", 200, index=True), _s("carrier", 50, nullable=False),
        _s("tracking_number", 100, nullable=False), _s("status", 30, nullable=False),
        sa.Column("last_scan_at", TS), sa.Column("estimate_to", TS), sa.Column("dispatch_by", TS),
        sa.Column("dispatched", sa.Boolean, nullable=False),
    )  # fmt: skip
    op.create_table(
        "episodes", _tenant(), _s("shipment_id", 200, primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("open", sa.Boolean, nullable=False), _s("reason", 50, nullable=False),
        sa.Column("alerts", sa.Integer, nullable=False), sa.Column("alerted_estimate", TS),
        sa.Column("opened_at", TS, nullable=False), sa.Column("closed_at", TS),
    )  # fmt: skip
    op.create_table(
        "gap_stats", _tenant(), _s("carrier", 50, primary_key=True),
        _s("lane", 30, primary_key=True), sa.Column("counts", sa.JSON, nullable=False),
    )  # fmt: skip
    op.create_table(
        "customers", _tenant(), _s("customer_id", 64, primary_key=True), _s("language", 8),
        _s("timezone", 64), _s("preferred_channel", 20),
        sa.Column("opted_out", sa.JSON, nullable=False),
    )  # fmt: skip
    op.create_table(
        "handles", _tenant(), _s("kind", 20, primary_key=True), _s("value", 320, primary_key=True),
        _s("customer_id", 64, nullable=False, index=True),
    )  # fmt: skip
    op.create_table(
        "cases", _tenant(), _s("ticket_id", 64, primary_key=True),
        _s("customer_id", 64, nullable=False), _s("order_id", 200, index=True),
        sa.Column("open", sa.Boolean, nullable=False),
    )  # fmt: skip
    _notifications()
    op.create_table("policies", _tenant(), sa.Column("doc", sa.JSON))
    op.create_table(
        "templates", _tenant(), _s("template_id", 64, primary_key=True),
        _s("language", 8, nullable=False), _s("subject", 998, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )  # fmt: skip
    op.create_table(
        "timers", sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _s("tenant_id", 64, nullable=False), _s("kind", 20, nullable=False),
        _s("ref", 200, nullable=False), sa.Column("due_at", TS, nullable=False, index=True),
        sa.Column("armed_for", TS),
    )  # fmt: skip
    op.create_index("uq_timers_ref", "timers", ["tenant_id", "kind", "ref"], unique=True)


def _notifications() -> None:
    op.create_table(
        "notifications", _s("id", 64, primary_key=True), _s("tenant_id", 64, nullable=False),
        _s("alert_key", 300, nullable=False), _s("customer_id", 64, nullable=False),
        _s("order_id", 200), _s("shipment_id", 200, nullable=False),
        sa.Column("episode", sa.Integer, nullable=False), _s("delay_reason", 50, nullable=False),
        sa.Column("estimate", TS), _s("status", 20, nullable=False),
        _s("reason", 200, nullable=False), _s("channel", 20),
        sa.Column("channels_left", sa.JSON, nullable=False), _s("recipient", 320),
        _s("language", 8), sa.Column("not_before", TS), _s("provider", 50),
        _s("provider_message_id", 300), sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("note", sa.Text), sa.Column("history", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False), sa.Column("updated_at", TS, nullable=False),
    )  # fmt: skip
    op.create_index(
        "uq_notifications_alert", "notifications", ["tenant_id", "alert_key"], unique=True
    )
    op.create_index("ix_notifications_customer", "notifications", ["tenant_id", "customer_id"])
    op.create_index("ix_notifications_provider_id", "notifications", ["provider_message_id"])


def downgrade() -> None:
    """Drop notifier's tables."""
    for name in reversed(TABLES):
        op.drop_table(name)
