"""Tables of the analytics service (its own schema); the kit's inbox and outbox included."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

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


def _rollup(name: str, period: str, *kept: str) -> Table:
    return Table(
        name,
        metadata,
        Column("tenant_id", String(64), primary_key=True),
        Column(period, DateTime(timezone=True), primary_key=True),
        *(Column(d, String(100 if d == "queue" else 20), primary_key=True) for d in kept),
        Column("name", String(64), primary_key=True),
        Column("bin", Integer, primary_key=True),
        Column("value", BigInteger, nullable=False),
    )


# Additive rollups of `components`, kept in the same transaction as every upsert of it: per UTC
# day and per UTC calendar month, by what reads group by — the queue, the channel (migration
# 0006; before, queue x channel) — and per tenant; per hour and per 6 hours per tenant (the
# ragged edges of a range). No agent. A read over whole hours, days or months sums these instead of the
# 15-minute rows.
hourly_total = _rollup("kpi_hourly_total", "hour")
# per 6 hours from a UTC midnight (00, 06, 12, 18; migration 0007): a ragged half day is at
# most 5 hours + 1-2 of these instead of up to 12 hours
six_hourly_total = _rollup("kpi_six_hourly_total", "six_hours")
daily_total = _rollup("kpi_daily_total", "day")
daily_queue = _rollup("kpi_daily_queue", "day", "queue")
daily_channel = _rollup("kpi_daily_channel", "day", "channel")
# per week of the month and queue (days 1-7, 8-14, 15-21, 22-28, 29-end: `components.week_of`;
# migration 0009): the whole days of a per-queue total that are not a whole month (e.g. the
# last 30 days across two months) are read as weeks and a few days instead of every day (≈ 38k
# rows a day at 10^7 events a month). Totals and channels read days there (≈ 1.3k rows a day):
# not worth their writes.
weekly_queue = _rollup("kpi_weekly_queue", "week", "queue")
monthly_total = _rollup("kpi_monthly_total", "month")
monthly_queue = _rollup("kpi_monthly_queue", "month", "queue")
monthly_channel = _rollup("kpi_monthly_channel", "month", "channel")
# (period, grouping or None) -> rollup; upserted in this order
ROLLUPS = {
    ("hour", None): hourly_total,
    ("six_hours", None): six_hourly_total,
    ("day", None): daily_total,
    ("day", "queue"): daily_queue,
    ("day", "channel"): daily_channel,
    ("week", "queue"): weekly_queue,
    ("month", None): monthly_total,
    ("month", "queue"): monthly_queue,
    ("month", "channel"): monthly_channel,
}

# The per-queue monthly rollup with each sketch as counts per block and the per-second wait
# histograms in 5-second blocks up to `parts.WAIT_S_KEPT` (`parts.coarse_bin`; migrations 0008,
# 0011): step 1 of a per-queue total reads this instead of every bin.
monthly_queue_blocks = _rollup("kpi_monthly_queue_blocks", "month", "queue")
# the same per week of the month (migration 0009) and per day (0010: a per-queue total's day
# pieces, e.g. the day that the last 30 days to a month's end subtract from the month)
weekly_queue_blocks = _rollup("kpi_weekly_queue_blocks", "week", "queue")
daily_queue_blocks = _rollup("kpi_daily_queue_blocks", "day", "queue")
# (period, grouping) -> coarse rollup; upserted after ROLLUPS, in this order
COARSE: dict[tuple[str, str | None], Table] = {
    ("day", "queue"): daily_queue_blocks,
    ("week", "queue"): weekly_queue_blocks,
    ("month", "queue"): monthly_queue_blocks,
}

thresholds = Table(
    "kpi_thresholds",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("kpi", String(64), primary_key=True),
    Column("green_at", Float, nullable=False),
    Column("red_at", Float, nullable=False),
    Column("direction", String(20), nullable=False),
)

# Facts of derived entities (case, cycle, alert) merged from their events, and the components
# each one last added to the buckets (JSON), so a change adds only the difference.
facts = Table(
    "kpi_facts",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("customer_id", String(64), nullable=False),  # the customer it is grouped under now
    Column("doc", Text, nullable=False),
    Column("applied", Text, nullable=False),
    Column("origin_id", String(64)),  # the customer it came from (0012): where an undo puts it
    Index("ix_kpi_facts_customer", "tenant_id", "customer_id"),
)

# crm's customer merges (`customer.merged`; `undone` by `customer.unmerged`, or an undo that
# arrived before its merge): a customer id resolves through the merges not undone to its survivor.
merges = Table(
    "kpi_merges",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("merge_id", String(64), primary_key=True),
    Column("survivor_id", String(64), nullable=False),
    Column("merged_id", String(64), nullable=False),
    Column("merged_at", DateTime(timezone=True), nullable=False),
    Column("undone", Boolean, nullable=False),
    Index("ix_kpi_merges_merged", "tenant_id", "merged_id"),
)

# Every presence change of every agent (online spans between them feed occupancy).
presence_log = Table(
    "presence_log",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("agent", String(100), primary_key=True),
    Column("at", DateTime(timezone=True), primary_key=True),
    Column("presence", String(10), nullable=False),
)
