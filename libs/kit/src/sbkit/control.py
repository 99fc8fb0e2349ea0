"""The control plane: revocations read by every service; tenants and tokens kept by the CLI."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, func

from sbcontracts.catalog import InvalidEvent, decode
from sbcontracts.events.control import TokenRevoked
from sbcontracts.topics import CONTROL
from sbkit.auth import TokenVerifier
from sbkit.bus.ports import Record, Subscription
from sbkit.db.tables import KitTables

metadata = MetaData()
tables = KitTables(metadata)
tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
tokens = Table(
    "tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


def revocation_subscription(verifier: TokenVerifier, *, service: str) -> Subscription:
    """Every process reads the whole control topic and keeps the revoked token ids in memory."""

    async def handle(record: Record) -> None:
        try:
            event = decode(record.value)
        except InvalidEvent:
            return  # control records we do not understand are not ours to act on
        if isinstance(event.data, TokenRevoked):
            verifier.revoked.add(event.data.token_id)

    return Subscription(group=None, topics=(CONTROL.name,), handler=handle)
