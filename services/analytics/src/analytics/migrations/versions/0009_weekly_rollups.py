"""The per-queue rollup per week of the month (days 1-7, 8-14, 15-21, 22-28, 29-end:
`components.week_of`), and kept coarse as well (as 0008's month): the whole days of a per-queue
total that are not whole months (the last 30 days across two months) are read as weeks and a
few days instead of every day. Backfilled from the daily per-queue rollup.

PostgreSQL: every table the batch upsert adds to gets fillfactor 75 (pages filled to 75 %): an
upsert that adds to a row can then write its new version in the same page (a HOT update: no
new index entry), which the extra weekly rows' writes need (through Kafka, the bench's writes
with the weekly rollups: 4,644 events/s at fillfactor 100, 5,492 at 75, same load).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"

# the same as `parts.coarse_bin` (BLOCK = 16, WAIT_S_KEPT = 60), fixed for this revision
_COARSE_BIN = (
    "CASE WHEN name LIKE 'sk:%' THEN bin / 16"
    " WHEN name IN ('ans_wait_s', 'ab_wait_s') AND bin > 60 THEN 61 ELSE bin END"
)
# rollup -> its stored bin (both summed from kpi_daily_queue)
TABLES = {"kpi_weekly_queue": "bin", "kpi_weekly_queue_blocks": _COARSE_BIN}
# the tables the batch upsert adds to before this revision
UPSERTED = (
    "kpi_components",
    "kpi_hourly_total",
    "kpi_six_hourly_total",
    "kpi_daily_total",
    "kpi_daily_queue",
    "kpi_daily_channel",
    "kpi_monthly_total",
    "kpi_monthly_queue",
    "kpi_monthly_channel",
    "kpi_monthly_queue_blocks",
)
FILLFACTOR = 75


def _week() -> str:
    """The UTC start of the week of the month of a daily row in this dialect (SQLite: naive UTC
    text, as the rows are stored)."""
    if op.get_bind().dialect.name == "postgresql":
        utc = "day AT TIME ZONE 'UTC'"
        return (
            f"({utc} - interval '1 day' * ((CAST(extract(day FROM {utc}) AS integer) - 1) % 7))"
            " AT TIME ZONE 'UTC'"
        )
    return (
        "substr(day, 1, 8) || printf('%02d', (CAST(substr(day, 9, 2) AS INTEGER) - 1) / 7 * 7 + 1)"
        " || substr(day, 11)"
    )


def _fillfactor(tables: tuple[str, ...], percent: int) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in tables:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")


def upgrade() -> None:
    for table, bin_ in TABLES.items():
        op.create_table(
            table,
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("week", sa.DateTime(timezone=True), nullable=False),
            sa.Column("queue", sa.String(100), nullable=False),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("bin", sa.Integer, nullable=False),
            sa.Column("value", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint(
                "tenant_id", "week", "queue", "name", "bin", name=f"pk_{table}"
            ),
        )
        op.execute(
            f"INSERT INTO {table} (tenant_id, week, queue, name, bin, value)"
            f" SELECT tenant_id, {_week()}, queue, name, {bin_}, SUM(value) FROM kpi_daily_queue"
            " GROUP BY 1, 2, 3, 4, 5"
        )
    _fillfactor((*UPSERTED, *TABLES), FILLFACTOR)


def downgrade() -> None:
    _fillfactor(UPSERTED, 100)
    for table in TABLES:
        op.drop_table(table)
