"""Monthly rollups of the KPI components (without the agent; and per tenant only), backfilled.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

_FROM = {
    "kpi_monthly": ("kpi_daily", ("queue", "channel")),
    "kpi_monthly_total": ("kpi_daily_total", ()),
}


def _month_sql() -> str:
    """The UTC midnight starting the month of `day` in this dialect (SQLite: naive UTC text)."""
    if op.get_bind().dialect.name == "postgresql":
        return "date_trunc('month', day AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    return "substr(day, 1, 7) || '-01 00:00:00.000000'"


def upgrade() -> None:
    """Create the monthly rollups and fill them from the daily ones."""
    for table, (daily, dims) in _FROM.items():
        op.create_table(
            table,
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("month", sa.DateTime(timezone=True), nullable=False),
            *(sa.Column(d, sa.String(100 if d == "queue" else 20), nullable=False) for d in dims),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("bin", sa.Integer, nullable=False),
            sa.Column("value", sa.BigInteger, nullable=False),
            sa.PrimaryKeyConstraint("tenant_id", "month", *dims, "name", "bin", name=f"pk_{table}"),
        )
        keys = ", ".join(("tenant_id", "month", *dims, "name", "bin"))
        source = ", ".join(("tenant_id", _month_sql(), *dims, "name", "bin"))
        op.execute(
            f"INSERT INTO {table} ({keys}, value) SELECT {source}, SUM(value)"
            f" FROM {daily} GROUP BY {', '.join(str(i) for i in range(1, len(dims) + 5))}"
        )


def downgrade() -> None:
    """Drop the monthly rollups."""
    for table in _FROM:
        op.drop_table(table)
