"""Totals per 6 hours (from a UTC midnight: 00, 06, 12, 18) per tenant, for the ragged edges of
a range: a half day is read from at most 5 hourly and 2 six-hourly rows per (name, bin) instead
of 12 hourly ones. Backfilled from the hourly totals.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

TABLE = "kpi_six_hourly_total"


def _start() -> str:
    """The UTC start of the 6 hours of an hourly row in this dialect (SQLite: naive UTC text)."""
    if op.get_bind().dialect.name == "postgresql":
        day = "date_trunc('day', hour AT TIME ZONE 'UTC')"
        return (
            f"({day} + interval '6 hours' * floor(extract(hour FROM hour AT TIME ZONE 'UTC') / 6))"
            " AT TIME ZONE 'UTC'"
        )
    return (
        "substr(hour, 1, 11) || printf('%02d', CAST(substr(hour, 12, 2) AS INTEGER) / 6 * 6)"
        " || ':00:00.000000'"
    )


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("six_hours", sa.DateTime(timezone=True), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("bin", sa.Integer, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "six_hours", "name", "bin", name=f"pk_{TABLE}"),
    )
    op.execute(
        f"INSERT INTO {TABLE} (tenant_id, six_hours, name, bin, value)"
        f" SELECT tenant_id, {_start()}, name, bin, SUM(value) FROM kpi_hourly_total"
        " GROUP BY 1, 2, 3, 4"
    )


def downgrade() -> None:
    op.drop_table(TABLE)
