"""The coarse per-queue rollups (`kpi_{daily,weekly,monthly}_queue_blocks`, 0008-0010) keep each
per-second wait histogram in 5-second blocks, each at its upper bound (bin 0 as 0, 1-5 as 5, …,
56-60 as 60, the rest as 61: `parts.coarse_bin`) instead of bin for bin up to 60: a band up to
T is still exact for T = 0, 5, 10, …, 60 (the defaults 20 and 5 among them; any other T reads
the fine rollups), in ≈ 28 instead of ≈ 122 wait rows per queue and period (≈ 2.4x fewer rows in
step 1 of a per-queue total). Each table is rebuilt from its fine rollup, in primary-key order
(a period's rows lie together, as the consumer writes them); the downgrade rebuilds it with
0008's bins.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"

# coarse table -> (its period, the fine rollup it is summed from)
TABLES = {
    "kpi_daily_queue_blocks": ("day", "kpi_daily_queue"),
    "kpi_weekly_queue_blocks": ("week", "kpi_weekly_queue"),
    "kpi_monthly_queue_blocks": ("month", "kpi_monthly_queue"),
}
WAITS = "name IN ('ans_wait_s', 'ab_wait_s')"
# the same as `parts.coarse_bin` (BLOCK = 16, WAIT_S_BLOCK = 5, WAIT_S_KEPT = 60), fixed for this
# revision (bins are never negative: / is //)
COARSE_BIN = (
    "CASE WHEN name LIKE 'sk:%' THEN bin / 16"
    f" WHEN {WAITS} AND bin > 60 THEN 61 WHEN {WAITS} THEN (bin + 4) / 5 * 5 ELSE bin END"
)
# 0008-0010's
COARSE_BIN_BEFORE = (
    f"CASE WHEN name LIKE 'sk:%' THEN bin / 16 WHEN {WAITS} AND bin > 60 THEN 61 ELSE bin END"
)


def _rebuild(coarse_bin: str) -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (period, fine) in TABLES.items():
        op.execute(f"TRUNCATE {table}" if postgresql else f"DELETE FROM {table}")
        op.execute(
            f"INSERT INTO {table} (tenant_id, {period}, queue, name, bin, value)"
            f" SELECT tenant_id, {period}, queue, name, {coarse_bin}, SUM(value) FROM {fine}"
            " GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"
        )


def upgrade() -> None:
    _rebuild(COARSE_BIN)


def downgrade() -> None:
    _rebuild(COARSE_BIN_BEFORE)
