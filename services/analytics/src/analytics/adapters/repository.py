"""Every query of analytics: additive upserts of components, range sums, thresholds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    case,
    cast,
    delete,
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters.orm import ROLLUPS, components, thresholds
from analytics.domain.components import Bucket, Increment, Piece, day_of
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
    hour, day and month rollups (same order of tables in every batch), each summed in memory from
    the finest sums that hold its key. One statement per table."""
    rows = {_key(item): item[1] for item in deltas.items() if item[1]}
    if not rows:
        return
    days: dict[datetime, datetime] = {}  # interval start -> its day (few per batch)
    # (tenant, day, queue, channel, name, bin) in memory, then each rollup from the finest one
    # that holds its key (each smaller than the one before)
    day_qc = _sum_by(
        rows,
        lambda k: (k[0], days.get(k[1]) or days.setdefault(k[1], day_of(k[1])), *k[2:4], *k[5:]),
    )
    day_queue = _sum_by(day_qc, lambda k: (*k[:3], *k[4:]))
    day_channel = _sum_by(day_qc, lambda k: (k[0], k[1], *k[3:]))
    day_total = _sum_by(day_channel, lambda k: (k[0], k[1], *k[3:]))
    rolled = {
        ("day", None): day_total,
        ("day", "queue"): day_queue,
        ("day", "channel"): day_channel,
    }
    for (_, grouping), sums in list(rolled.items()):
        rolled[("month", grouping)] = _sum_by(sums, lambda k: (k[0], k[1].replace(day=1), *k[2:]))
    rolled[("hour", None)] = _sum_by(rows, lambda k: (k[0], k[1].replace(minute=0), *k[5:]))
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
    """Add each key's sum to its row of `table` (key = the primary key), inserting missing rows,
    in key order. PostgreSQL: one statement over arrays (`unnest`), rows taken in array order;
    an `executemany` of the single-row upsert cost a server round of parse/bind/execute per row
    (most of a batch's time with the rollups). SQLite: the cached statement, executed per row."""
    keys = sorted(sums)
    if not keys:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(_unnest_upsert(table), _columns(table, keys, sums))
        return
    names = [c.name for c in table.columns]
    stmt = _insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={"value": table.c.value + stmt.excluded.value},
    )
    params = [dict(zip(names, (*k, sums[k]), strict=True)) for k in keys]
    await session.execute(stmt, params)


_PG_TYPES = {String: "varchar", DateTime: "timestamptz", Integer: "int4", BigInteger: "int8"}


@cache
def _unnest_upsert(table: Table) -> Any:
    """`INSERT … SELECT FROM unnest(arrays) WITH ORDINALITY ORDER BY ordinality ON CONFLICT …`."""
    cols = [c.name for c in table.columns]
    arrays = ", ".join(f"CAST(:{c.name} AS {_PG_TYPES[type(c.type)]}[])" for c in table.columns)
    pk = ", ".join(c.name for c in table.primary_key.columns)
    return text(
        f"INSERT INTO {table.name} ({', '.join(cols)})"
        f" SELECT {', '.join(cols)} FROM unnest({arrays}) WITH ORDINALITY"
        f" AS r({', '.join(cols)}, i) ORDER BY i"
        f" ON CONFLICT ({pk}) DO UPDATE SET value = {table.name}.value + excluded.value"
    )


def _columns(
    table: Table, keys: list[tuple[Any, ...]], sums: dict[tuple[Any, ...], int]
) -> dict[str, list[Any]]:
    """The rows (keys in order, with their sums) as one list per column."""
    names = [c.name for c in table.columns]
    cols: list[list[Any]] = [list(col) for col in zip(*keys, strict=True)]
    return dict(zip(names, [*cols, [sums[k] for k in keys]], strict=True))


def _source(group_by: str | None, period: str) -> tuple[Table, Any]:
    """The table to sum for a grouping over whole periods ("15m": the 15-minute rows)."""
    if period == "15m":
        return components, components.c.interval_start
    table = ROLLUPS.get((period, group_by))
    if table is None:
        raise ValueError(f"no {period} rollup keeps {group_by}")
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


def _quantiles(summed: Any, sketches: Mapping[str, tuple[float, ...]], group_by: str | None) -> Any:
    """`summed` (name, bin, [grp], q, value) with each sketch's bins replaced by one row per
    requested quantile: q = its index in `quantile_list(sketches)`, bin = the quantile's bucket,
    value = the sketch's count. Exactly `LogHistogram.quantile_bin`: the first bin (in order)
    whose running count c passes rank floor(q(n - 1)) — for an integer c, c > floor(x) iff
    c > x, and both compute x in IEEE doubles — else the last bin."""
    qs = quantile_list(sketches)
    agg = summed.cte("agg")
    grp = [agg.c.grp] if group_by else []
    part = [*grp, agg.c.name]
    running = func.sum(agg.c.value).over(partition_by=part, order_by=agg.c.bin, rows=(None, 0))
    win = (
        select(
            *part,
            agg.c.bin,
            cast(running, Float).label("run"),
            func.sum(agg.c.value).over(partition_by=part).label("n"),
        )
        .where(agg.c.name.in_(list(sketches)))
        .subquery("win")
    )
    wpart = [win.c.grp, win.c.name] if group_by else [win.c.name]
    picked = (
        select(
            *wpart,
            func.max(win.c.bin).label("top"),
            func.max(win.c.n).label("n"),
            *(
                func.min(
                    case((win.c.run > literal(q, Float) * cast(win.c.n - 1, Float), win.c.bin))
                ).label(f"b{i}")
                for i, q in enumerate(qs)
            ),
        )
        .group_by(*wpart)
        .cte("picked")
    )
    pgrp = [picked.c.grp] if group_by else []
    rows = [
        select(
            picked.c.name,
            func.coalesce(picked.c[f"b{i}"], picked.c.top),
            *pgrp,
            literal(i),
            picked.c.n,
        ).where(picked.c.name.in_([s for s, sqs in sketches.items() if q in sqs]))
        for i, q in enumerate(qs)
    ]
    return union_all(select(agg).where(agg.c.name.not_in(list(sketches))), *rows)


def quantile_list(sketches: Mapping[str, tuple[float, ...]]) -> list[float]:
    """Every q some sketch is read at, in order (the `q` column of `_quantiles` indexes it)."""
    return sorted({q for qs in sketches.values() for q in qs})


async def sums(
    session: AsyncSession,
    *,
    tenant: str,
    pieces: Sequence[Piece],
    group_by: str | None = None,
    by_interval: bool = False,
    names: Sequence[str] | None = None,
    needs: Needs | None = None,
) -> dict[tuple[str, datetime | None], Totals]:
    """Summed components per (group value, interval start) over the pieces of a range, in one
    statement; cost O(rows read). A piece [start, end) of `period` "15m" reads the 15-minute
    rows, "day" or "month" (start and end at such boundaries) that rollup, whose intervals are
    then days or months. `needs`: only what some KPIs read (`Needs.reduce`; quantiles in SQL
    only for one total per group of a grouping: they do not add up over intervals)."""
    reads = []
    for start, end, period in pieces:
        table, at = _source(group_by, period)
        cols: list[Any] = [table.c.name.label("name"), _bin_read_as(table, needs).label("bin")]
        cols += [table.c[group_by].label("grp")] if group_by else []
        cols += [at.label("at")] if by_interval else []
        rows = select(*cols, table.c.value).where(table.c.tenant_id == tenant, at < end)
        if start is not None:
            rows = rows.where(at >= start)
        if names is not None:
            rows = rows.where(table.c.name.in_(names))
        reads.append(rows)
    read = (union_all(*reads) if len(reads) > 1 else reads[0]).subquery("read")
    keys = [read.c.name, read.c.bin]
    keys += [read.c.grp] if group_by else []
    keys += [read.c.at] if by_interval else []
    q = cast(null(), Integer).label("q")
    summed = select(*keys, q, func.sum(read.c.value).label("value")).group_by(*keys)
    # quantiles in SQL pay off with many groups (for a total: a CTE and two window sorts cost
    # more than the few hundred sketch bins they spare)
    sketches = needs.quantiles if needs is not None and group_by and not by_interval else {}
    stmt = _quantiles(summed, sketches, group_by) if sketches else summed
    qs = quantile_list(sketches)
    out: dict[tuple[str, datetime | None], Totals] = {}
    for row in await session.execute(stmt):
        name, bin_, value = row[0], row[1], int(row[-1])
        g = row[2] if group_by else ""
        slot = utc(row[2 + bool(group_by)]) if by_interval else None
        totals = out.setdefault((g, slot), Totals())
        if row[-2] is None:
            totals.add(name, bin_, value)
        else:
            totals.quantiles[(name, qs[row[-2]])] = bin_ if value else None
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
