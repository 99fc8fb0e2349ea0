"""The kit's tables, added to each service's metadata: inbox (processed events) and outbox."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
)

BigId = BigInteger().with_variant(Integer(), "sqlite")


class KitTables:
    """Inbox and outbox tables bound to one service's metadata."""

    def __init__(self, metadata: MetaData) -> None:
        self.inbox = Table(
            "inbox",
            metadata,
            Column("consumer", String(100), primary_key=True),
            Column("event_id", String(128), primary_key=True),
            Column(
                "processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()
            ),
        )
        self.outbox = Table(
            "outbox",
            metadata,
            Column("id", BigId, primary_key=True, autoincrement=True),
            Column("topic", String(200), nullable=False),
            Column("key", String(300), nullable=False),
            Column("value", LargeBinary, nullable=False),
            Column("headers", JSON, nullable=False),
            Column(
                "created_at", DateTime(timezone=True), nullable=False, server_default=func.now()
            ),
        )
