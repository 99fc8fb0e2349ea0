"""The per-queue monthly rollup kept coarse as well (`kpi_monthly_queue_blocks`): each quantile
sketch (`sk:*`) as its counts per block of 16 bins, each per-second wait histogram's bins up to
60 with the rest summed into bin 61 (`parts.coarse_bin`), every other component as it is. Step 1
of a per-queue total reads this (≈ 5x fewer rows at 10^7 events a month). Backfilled.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

TABLE = "kpi_monthly_queue_blocks"
# the same as `parts.coarse_bin` (BLOCK = 16, WAIT_S_KEPT = 60), fixed for this revision
COARSE_BIN = (
    "CASE WHEN name LIKE 'sk:%' THEN bin / 16"
    " WHEN name IN ('ans_wait_s', 'ab_wait_s') AND bin > 60 THEN 61 ELSE bin END"
)


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("month", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "month", "queue", "name", "bin", name=f"pk_{TABLE}"),
    )
    op.execute(
        f"INSERT INTO {TABLE} (tenant_id, month, queue, name, bin, value)"
        f" SELECT tenant_id, month, queue, name, {COARSE_BIN}, SUM(value) FROM kpi_monthly_queue"
        " GROUP BY 1, 2, 3, 4, 5"
    )


def downgrade() -> None:
    op.drop_table(TABLE)
