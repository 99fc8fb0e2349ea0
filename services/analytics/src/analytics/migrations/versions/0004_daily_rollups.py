"""Daily rollups of the KPI components (without the agent; and per tenant only), backfilled.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

_DIMS = {"kpi_daily": ("queue", "channel"), "kpi_daily_total": ()}


def _day_sql() -> str:
    """The UTC midnight of `interval_start` in this dialect (SQLite stores naive UTC text)."""
    if op.get_bind().dialect.name == "postgresql":
        return "date_trunc('day', interval_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    return "substr(interval_start, 1, 10) || ' 00:00:00.000000'"


def upgrade() -> None:
    """Create the rollups and fill them from the stored 15-minute components."""
    for table, dims in _DIMS.items():
        op.create_table(
            table,
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("day", sa.DateTime(timezone=True), nullable=False),
            *(sa.Column(d, sa.String(100 if d == "queue" else 20), nullable=False) for d in dims),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("bin", sa.Integer, nullable=False),
            sa.Column("value", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("tenant_id", "day", *dims, "name", "bin", name=f"pk_{table}"),
        )
        keys = ", ".join(("tenant_id", "day", *dims, "name", "bin"))
        source = ", ".join(("tenant_id", _day_sql(), *dims, "name", "bin"))
        op.execute(
            f"INSERT INTO {table} ({keys}, value) SELECT {source}, SUM(value)"
            f" FROM kpi_components GROUP BY {', '.join(str(i) for i in range(1, len(dims) + 5))}"
        )


def downgrade() -> None:
    """Drop the rollups."""
    for table in _DIMS:
        op.drop_table(table)
