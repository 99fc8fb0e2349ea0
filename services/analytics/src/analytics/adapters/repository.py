"""Every query of analytics: additive upserts of components, range sums, thresholds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters.orm import ROLLUPS, components, thresholds
from analytics.domain.components import Bucket, Increment, day_of
from analytics.domain.kpis import Totals
from analytics.domain.lights import Direction, Threshold
from analytics.domain.parts import HISTOGRAMS, Needs

GROUPS = ("queue", "channel", "agent")


def utc(at: datetime) -> datetime:
    """A stored datetime as aware UTC (SQLite returns naive ones)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _insert(session: AsyncSession, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# Summed increments of many buckets: (bucket, component name, bin) -> value.
Deltas = dict[tuple[Bucket, str, int], int]


def collect(deltas: Deltas, bucket: Bucket, increments: Iterable[Increment]) -> None:
    """Sum increments into `deltas` (in memory)."""
    for inc in increments:
        key = (bucket, inc.name, inc.bin)
        deltas[key] = deltas.get(key, 0) + inc.value


def _key(item: tuple[tuple[Bucket, str, int], int]) -> tuple[Any, ...]:
    (b, name, bin_), _ = item
    return (b.tenant, b.interval, b.queue, b.channel, b.agent, name, bin_)


async def add_deltas(session: AsyncSession, deltas: Deltas) -> None:
    """Upsert each touched row once, in primary-key order (concurrent batches lock rows in the
    same order, so they wait for each other instead of deadlocking), then the same sums into the
    day and month rollups (same order of tables in every batch). One cached statement per table executed
    for many parameter sets: compiling a multi-row VALUES cost more than the upsert."""
    rows = {_key(item): item[1] for item in deltas.items() if item[1]}
    if not rows:
        return
    days: dict[datetime, datetime] = {}  # interval start -> its day (few per batch)
    # (tenant, day, queue, channel, name, bin), then the coarser rollups from that (smaller)
    day = _sum_by(
        rows,
        lambda k: (k[0], days.get(k[1]) or days.setdefault(k[1], day_of(k[1])), *k[2:4], *k[5:]),
    )
    day_total = _sum_by(day, lambda k: (k[0], k[1], *k[4:]))
    rolled = {
        ("day", True): day,
        ("day", False): day_total,
        ("month", True): _sum_by(day, lambda k: (k[0], k[1].replace(day=1), *k[2:])),
        ("month", False): _sum_by(day_total, lambda k: (k[0], k[1].replace(day=1), *k[2:])),
    }
    await _upsert(session, components, rows)
    for rollup in ROLLUPS:  # always in this order
        await _upsert(session, ROLLUPS[rollup], rolled[rollup])


def _sum_by(
    sums: dict[tuple[Any, ...], int], key: Callable[[tuple[Any, ...]], tuple[Any, ...]]
) -> dict[tuple[Any, ...], int]:
    """Sums regrouped by a coarser key (a sum of 0 still marks its group as seen)."""
    out: dict[tuple[Any, ...], int] = {}
    for k, v in sums.items():
        coarse = key(k)
        out[coarse] = out.get(coarse, 0) + v
    return out


async def _upsert(session: AsyncSession, table: Table, sums: dict[tuple[Any, ...], int]) -> None:
    """Add each key's sum to its row of `table` (key = the primary key), inserting missing rows."""
    names = [c.name for c in table.columns]
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={"value": table.c.value + stmt.excluded.value},
    )
    params = [dict(zip(names, (*k, sums[k]), strict=True)) for k in sorted(sums)]
    await session.execute(stmt, params)


def _source(group_by: str | None, period: str) -> tuple[Table, Any]:
    """The table to sum for a grouping over whole periods ("15m": the 15-minute rows)."""
    if period == "15m":
        return components, components.c.interval_start
    if group_by not in (None, "queue", "channel"):
        raise ValueError(f"no rollup keeps {group_by}")
    table = ROLLUPS[(period, group_by is not None)]
    return table, table.c[period]


def _bin_read_as(table: Table, needs: Needs | None) -> Any:
    """The bin a stored row is read as: `Needs.read_as` in SQL, a CASE on the few histogram
    names it changes (the raw bin without needs)."""
    name, bin_ = table.c.name, table.c.bin
    whens = (
        []
        if needs is None
        else [(name == n, 0) for n in HISTOGRAMS if n not in needs.names]
        + [
            (name == n, case(*((bin_ <= lim, lim) for lim in limits), else_=limits[-1] + 1))
            for n, limits in needs.limits.items()
        ]
    )
    return case(*whens, else_=bin_) if whens else bin_


async def sums(
    session: AsyncSession,
    *,
    tenant: str,
    start: datetime | None,
    end: datetime,
    group_by: str | None = None,
    by_interval: bool = False,
    names: Sequence[str] | None = None,
    needs: Needs | None = None,
    period: str = "15m",
) -> dict[tuple[str, datetime | None], Totals]:
    """Summed components per (group value, interval start) over [start, end); cost O(rows read).
    `needs`: only what some KPIs read (`Needs.reduce`); `period` "day" or "month" (start and end
    at such boundaries): read that rollup, whose intervals are then days or months."""
    table, at = _source(group_by, period)
    cols: list[Any] = [table.c.name.label("name"), _bin_read_as(table, needs).label("bin")]
    cols += [table.c[group_by].label("grp")] if group_by else []
    cols += [at.label("at")] if by_interval else []
    rows = select(*cols, table.c.value).where(table.c.tenant_id == tenant, at < end)
    if start is not None:
        rows = rows.where(at >= start)
    if names is not None:
        rows = rows.where(table.c.name.in_(names))
    read = rows.subquery()
    keys = [read.c[c.name] for c in cols]
    out: dict[tuple[str, datetime | None], Totals] = {}
    for row in await session.execute(select(*keys, func.sum(read.c.value)).group_by(*keys)):
        g = row.grp if group_by else ""
        slot = utc(row.at) if by_interval else None
        out.setdefault((g, slot), Totals()).add(row.name, row.bin, int(row[-1]))
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
    session: AsyncSession,
    *,
    tenant: str,
    start: datetime | None,
    end: datetime,
    period: str = "15m",
) -> list[tuple[datetime, str, int]]:
    """(interval start, category, count) of classified cases in [start, end) (`period` "day" or
    "month": from that per-tenant rollup, per day or month)."""
    table, at = _source(None, period)
    q = (
        select(at, table.c.name, func.sum(table.c.value))
        .where(table.c.tenant_id == tenant, at < end, table.c.name.like("cat:%"))
        .group_by(at, table.c.name)
        .order_by(at)
    )
    if start is not None:
        q = q.where(at >= start)
    rows = await session.execute(q)
    return [(utc(day), name[4:], int(n)) for day, name, n in rows if n]  # 0: all re-classified


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
