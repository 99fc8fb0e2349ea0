"""Tables of the analytics service (its own schema); the kit's inbox and outbox included."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table

from sbkit.db.tables import KitTables

metadata = MetaData()
kit = KitTables(metadata)

DIMENSIONS = ("tenant_id", "interval_start", "queue", "channel", "agent")

# One row per bucket x component (x histogram bin); only ever incremented.
components = Table(
    "kpi_components",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("interval_start", DateTime(timezone=True), primary_key=True),
    Column("queue", String(100), primary_key=True),
    Column("channel", String(20), primary_key=True),
    Column("agent", String(100), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("bin", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

thresholds = Table(
    "kpi_thresholds",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("kpi", String(64), primary_key=True),
    Column("green_at", Float, nullable=False),
    Column("red_at", Float, nullable=False),
    Column("direction", String(20), nullable=False),
)
