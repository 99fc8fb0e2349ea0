"""Rollups keyed by what reads group by: the queue alone and the channel alone (day and month),
in place of queue x channel (a `group_by=channel` read summed every queue's rows); and hourly
totals per tenant for the ragged edges of a range. Backfilled.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

# rollup -> (its period, the table it is summed from, its kept dimensions)
Rollups = dict[str, tuple[str, str, tuple[str, ...]]]
_NEW: Rollups = {
    "kpi_hourly_total": ("hour", "kpi_components", ()),
    "kpi_daily_queue": ("day", "kpi_daily", ("queue",)),
    "kpi_daily_channel": ("day", "kpi_daily", ("channel",)),
    "kpi_monthly_queue": ("month", "kpi_daily_queue", ("queue",)),
    "kpi_monthly_channel": ("month", "kpi_daily_channel", ("channel",)),
}
_OLD: Rollups = {
    "kpi_daily": ("day", "kpi_components", ("queue", "channel")),
    "kpi_monthly": ("month", "kpi_daily", ("queue", "channel")),
}


def _start(period: str, source: str) -> str:
    """The UTC start of the period of a source row in this dialect (SQLite: naive UTC text)."""
    column = "interval_start" if source == "kpi_components" else "day"
    if op.get_bind().dialect.name == "postgresql":
        return f"date_trunc('{period}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    if period == "hour":
        return f"substr({column}, 1, 13) || ':00:00.000000'"
    if period == "day":
        return f"substr({column}, 1, 10) || ' 00:00:00.000000'"
    return f"substr({column}, 1, 7) || '-01 00:00:00.000000'"


def _create(tables: Rollups) -> None:
    """Create each rollup and fill it from its source (in order: a source may be one before)."""
    for table, (period, source, dims) in tables.items():
        op.create_table(
            table,
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column(period, sa.DateTime(timezone=True), nullable=False),
            *(sa.Column(d, sa.String(100 if d == "queue" else 20), nullable=False) for d in dims),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("bin", sa.Integer, nullable=False),
            sa.Column("value", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("tenant_id", period, *dims, "name", "bin", name=f"pk_{table}"),
        )
        keys = ", ".join(("tenant_id", period, *dims, "name", "bin"))
        summed = ", ".join(("tenant_id", _start(period, source), *dims, "name", "bin"))
        op.execute(
            f"INSERT INTO {table} ({keys}, value) SELECT {summed}, SUM(value) FROM {source}"
            f" GROUP BY {', '.join(str(i) for i in range(1, len(dims) + 5))}"
        )


def upgrade() -> None:
    """The hourly totals; the per-queue and per-channel rollups from the queue x channel ones,
    which go."""
    _create(_NEW)
    for table in _OLD:
        op.drop_table(table)


def downgrade() -> None:
    """The queue x channel rollups again, from the 15-minute rows."""
    _create(_OLD)
    for table in _NEW:
        op.drop_table(table)
