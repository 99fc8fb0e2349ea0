"""Every query of analytics: additive upserts of components, range sums, thresholds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters.orm import components, thresholds
from analytics.domain.components import Bucket, Increment
from analytics.domain.kpis import Totals
from analytics.domain.lights import Direction, Threshold

GROUPS = ("queue", "channel", "agent")


def utc(at: datetime) -> datetime:
    """A stored datetime as aware UTC (SQLite returns naive ones)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(components)


# Summed increments of many buckets: (bucket, component name, bin) -> value.
Deltas = dict[tuple[Bucket, str, int], int]


def collect(deltas: Deltas, bucket: Bucket, increments: Iterable[Increment]) -> None:
    """Sum increments into `deltas` (in memory)."""
    for inc in increments:
        key = (bucket, inc.name, inc.bin)
        deltas[key] = deltas.get(key, 0) + inc.value


async def add(session: AsyncSession, bucket: Bucket, increments: Iterable[Increment]) -> None:
    """Add increments to a bucket's components (INSERT ... ON CONFLICT DO UPDATE value + new)."""
    deltas: Deltas = {}
    collect(deltas, bucket, increments)
    await add_deltas(session, deltas)


def _key(item: tuple[tuple[Bucket, str, int], int]) -> tuple[Any, ...]:
    (b, name, bin_), _ = item
    return (b.tenant, b.interval, b.queue, b.channel, b.agent, name, bin_)


async def add_deltas(session: AsyncSession, deltas: Deltas) -> None:
    """Upsert each touched row once, in primary-key order (concurrent batches lock rows in the
    same order, so they wait for each other instead of deadlocking). One cached statement
    executed for many parameter sets: compiling a multi-row VALUES cost more than the upsert."""
    rows = [
        dict(zip(_COLUMNS, (*_key(item), item[1]), strict=True))
        for item in sorted(deltas.items(), key=_key)
        if item[1]
    ]
    if not rows:
        return
    stmt = _insert(session)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in components.primary_key.columns],
        set_={"value": components.c.value + stmt.excluded.value},
    )
    await session.execute(stmt, rows)


_COLUMNS = ("tenant_id", "interval_start", "queue", "channel", "agent", "name", "bin", "value")


async def sums(
    session: AsyncSession,
    *,
    tenant: str,
    start: datetime | None,
    end: datetime,
    group_by: str | None = None,
    by_interval: bool = False,
    names: Sequence[str] | None = None,
) -> dict[tuple[str, datetime | None], Totals]:
    """Summed components per (group value, interval start) over [start, end); cost O(buckets)."""
    group = components.c[group_by] if group_by else None
    cols: list[Any] = [components.c.name, components.c.bin]
    cols += [group] if group is not None else []
    cols += [components.c.interval_start] if by_interval else []
    q = select(*cols, func.sum(components.c.value)).where(
        components.c.tenant_id == tenant, components.c.interval_start < end
    )
    if start is not None:
        q = q.where(components.c.interval_start >= start)
    if names is not None:
        q = q.where(components.c.name.in_(names))
    out: dict[tuple[str, datetime | None], Totals] = {}
    for row in await session.execute(q.group_by(*cols)):
        g = row[2] if group is not None else ""
        at = utc(row[-2]) if by_interval else None
        out.setdefault((g, at), Totals()).add(row[0], row[1], int(row[-1]))
    return out


async def sums_by_tenant(
    session: AsyncSession, *, start: datetime, end: datetime
) -> dict[str, Totals]:
    """Summed components of every tenant over [start, end) (for the gauges)."""
    cols = (components.c.tenant_id, components.c.name, components.c.bin)
    q = (
        select(*cols, func.sum(components.c.value))
        .where(components.c.interval_start >= start, components.c.interval_start < end)
        .group_by(*cols)
    )
    out: dict[str, Totals] = {}
    for tenant, name, bin_, value in await session.execute(q):
        out.setdefault(tenant, Totals()).add(name, bin_, int(value))
    return out


async def categories(
    session: AsyncSession, *, tenant: str, start: datetime, end: datetime
) -> list[tuple[datetime, str, int]]:
    """(interval start, category, count) of classified cases in [start, end)."""
    q = (
        select(components.c.interval_start, components.c.name, func.sum(components.c.value))
        .where(
            components.c.tenant_id == tenant,
            components.c.interval_start >= start,
            components.c.interval_start < end,
            components.c.name.like("cat:%"),
        )
        .group_by(components.c.interval_start, components.c.name)
        .order_by(components.c.interval_start)
    )
    rows = await session.execute(q)
    return [(utc(at), name[4:], int(n)) for at, name, n in rows if n]  # 0: all re-classified


async def get_thresholds(session: AsyncSession, tenant: str) -> dict[str, Threshold]:
    """A tenant's traffic-light thresholds by KPI."""
    rows = await session.execute(select(thresholds).where(thresholds.c.tenant_id == tenant))
    return {r.kpi: Threshold(r.green_at, r.red_at, Direction(r.direction)) for r in rows}


async def put_thresholds(session: AsyncSession, tenant: str, values: dict[str, Threshold]) -> None:
    """Replace the given KPIs' thresholds of a tenant."""
    await session.execute(
        delete(thresholds).where(
            thresholds.c.tenant_id == tenant, thresholds.c.kpi.in_(list(values))
        )
    )
    if values:
        await session.execute(
            thresholds.insert(),
            [
                {
                    "tenant_id": tenant,
                    "kpi": kpi,
                    "green_at": t.green_at,
                    "red_at": t.red_at,
                    "direction": t.direction.value,
                }
                for kpi, t in values.items()
            ],
        )
