"""Every query of analytics: additive upserts of components, range sums, thresholds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters.orm import COARSE, ROLLUPS, components, thresholds
from analytics.domain.components import (
    DAY,
    HOUR,
    SIX_HOURS,
    Bucket,
    Increment,
    Piece,
    day_of,
    exact,
    next_month,
    next_week,
    six_of,
    week_of,
)
from analytics.domain.kpis import Totals
from analytics.domain.lights import Direction, Threshold
from analytics.domain.parts import (
    HISTOGRAMS,
    WAIT_HISTOGRAMS,
    WAIT_S_BLOCK,
    WAIT_S_KEPT,
    Needs,
    coarse_bin,
    coarse_keeps,
)
from analytics.domain.sketch import BLOCK, quantile_block, quantile_in_block
from sbkit.db import driver

GROUPS = ("queue", "channel", "agent")
# a total's rollup pieces read only the names its KPIs need when they are at most this many
# (an index range scan per period and name; with nearly every name one scan per period is less)
NARROW_NAMES = 16


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
    same order, so they wait for each other instead of deadlocking), and the same sums into the
    hour, 6-hour, day, week (per queue) and month rollups and the coarse per-queue day, week and
    month (same order of tables in every batch). PostgreSQL: one statement (`_fold_statement`)
    that gets the 15-minute rows and sums each rollup from them itself; SQLite: each rollup
    summed in memory (`rollup_sums`), one statement per table."""
    rows = {_key(item): item[1] for item in deltas.items() if item[1]}
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        keys = sorted(rows)
        await session.execute(_fold_statement(), _columns(components, keys, rows) | _periods(rows))
        return
    await _upsert(session, components, rows)
    for table, sums in rollup_sums(rows).items():  # always in this order
        await _upsert(session, table, sums)


def rollup_sums(rows: dict[tuple[Any, ...], int]) -> dict[Table, dict[tuple[Any, ...], int]]:
    """The sums each rollup table gets from these 15-minute rows (key = the table's primary key),
    in the tables' upsert order: ROLLUPS, then COARSE. Each summed in memory from the finest
    sums that hold its key."""
    days: dict[datetime, datetime] = {}  # interval start -> its day (few per batch)
    # (tenant, day, queue, channel, name, bin), then each rollup from the finest one that holds
    # its key (each smaller than the one before)
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
    rolled[("week", "queue")] = _sum_by(day_queue, lambda k: (k[0], week_of(k[1]), *k[2:]))
    rolled[("hour", None)] = _sum_by(rows, lambda k: (k[0], k[1].replace(minute=0), *k[5:]))
    rolled[("six_hours", None)] = _sum_by(
        rolled[("hour", None)], lambda k: (k[0], six_of(k[1]), *k[2:])
    )
    out = {ROLLUPS[rollup]: rolled[rollup] for rollup in ROLLUPS}
    for rollup, table in COARSE.items():  # key (..., name, bin): the bin coarsened
        out[table] = _sum_by(rolled[rollup], lambda k: (*k[:-1], coarse_bin(k[-2], k[-1])))
    return out


# `parts.coarse_bin` in SQL (bins are never negative, so / is //)
_WAITS = f"name IN ({', '.join(repr(n) for n in WAIT_HISTOGRAMS)})"
_COARSE_BIN_SQL = (
    f"CASE WHEN name LIKE 'sk:%' THEN bin / {BLOCK}"
    f" WHEN {_WAITS} AND bin > {WAIT_S_KEPT} THEN {WAIT_S_KEPT + 1}"
    f" WHEN {_WAITS} THEN (bin + {WAIT_S_BLOCK - 1}) / {WAIT_S_BLOCK} * {WAIT_S_BLOCK}"
    " ELSE bin END"
)


# The sums a batch's rollups are summed from (`rollup_sums` sums the same way in memory): name,
# columns (each keeps the coarser periods of its rows, which its key determines), summed from.
# A rollup sums the finest of them that holds its key — fewer rows than the batch's 15-minute
# rows (a batch of 500 bench events: 1,804 rows, ≈ 870 per day and queue) — instead of
# every 15-minute row again per rollup. (Also per day, queue and channel, summed into the per
# queue and per channel sums, and per day from the per channel ones: ≈ 1.5 % slower per batch.)
_SUMS = (
    ("hours", ("tenant_id", "hour", "six_hours", "name", "bin"), "src"),
    ("days_q", ("tenant_id", "day", "week", "month", "queue", "name", "bin"), "src"),
    ("days_c", ("tenant_id", "day", "month", "channel", "name", "bin"), "src"),
)


def _summed_from(period: str, grouping: str | None) -> str:
    """The sums (`_SUMS`) that a rollup of this period and grouping is summed from (a total:
    the per channel ones, far fewer rows than the 15-minute ones)."""
    if period in ("hour", "six_hours"):
        return "hours"
    return "days_q" if grouping == "queue" else "days_c"


@cache
def _fold_statement() -> Any:
    """PostgreSQL: a batch's 15-minute rows (arrays, as `_unnest_upsert`) upserted and summed into
    every rollup in one statement — each table's upsert a data-modifying CTE, run once and to
    completion, in the same order in every batch, each table's rows in key order; each rollup
    summed from the finest sums that hold its key (`_SUMS`: the batch statement 78.0 → 71.9 ms
    per 500 bench events, in process) — instead of one statement per table with every rollup's
    rows summed in Python and sent."""
    cols = [c.name for c in components.columns]
    arrays = ", ".join(
        f"CAST(:{c.name} AS {_PG_TYPES[type(c.type)]}[])" for c in components.columns
    )
    periods = ", ".join(f"CAST(:p_{p} AS timestamptz[])" for p in ("at", *PERIODS))
    src = (
        f"SELECT r.*, {', '.join(f'p.{p}' for p in PERIODS)}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS r({', '.join(cols)}, i)"
        f" JOIN unnest({periods}) AS p(at, {', '.join(PERIODS)}) ON p.at = r.interval_start"
    )
    sums = [
        f"{name} AS MATERIALIZED ({_sum_sql(list(key), source, alias=True)})"
        for name, key, source in _SUMS
    ]
    parts = [_upsert_sql(components, f"SELECT {', '.join(cols)} FROM src ORDER BY i")]
    for (period, grouping), table in ROLLUPS.items():
        key = _rollup_key(period, grouping, "bin")
        parts.append(_summed_upsert(table, key, _summed_from(period, grouping)))
    for (period, grouping), table in COARSE.items():
        key = _rollup_key(period, grouping, _COARSE_BIN_SQL)
        parts.append(_summed_upsert(table, key, _summed_from(period, grouping)))
    ctes = ", ".join(f"w{n} AS ({part})" for n, part in enumerate(parts[:-1]))
    return text(f"WITH src AS MATERIALIZED ({src}), {', '.join(sums)}, {ctes} {parts[-1]}")


def _rollup_key(period: str, grouping: str | None, bin_sql: str) -> list[str]:
    return ["tenant_id", period, *([grouping] if grouping else []), "name", bin_sql]


PERIODS = ("hour", "six_hours", "day", "week", "month")


def _periods(rows: dict[tuple[Any, ...], int]) -> dict[str, list[datetime]]:
    """Each distinct interval start of the rows with the start of its hour, 6 hours, day, week
    and month (as `rollup_sums` keys them), as arrays `p_at`, `p_hour`, …: the statement joins them
    to the rows (a few dozen intervals a batch) instead of truncating every row's time per
    rollup in SQL (≈ 1 ms of PostgreSQL per rollup and batch of 500 events)."""
    at = sorted({k[1] for k in rows})
    days = [day_of(t) for t in at]
    return {
        "p_at": at,
        "p_hour": [t.replace(minute=0) for t in at],
        "p_six_hours": [six_of(t) for t in at],
        "p_day": days,
        "p_week": [week_of(d) for d in days],
        "p_month": [d.replace(day=1) for d in days],
    }


def _sum_sql(key: list[str], source: str, *, alias: bool = False) -> str:
    """`SELECT key, SUM(value) FROM source GROUP BY key` (a group whose sum is 0 is kept, as in
    `rollup_sums`)."""
    by = ", ".join(str(n) for n in range(1, len(key) + 1))
    value = "CAST(SUM(value) AS bigint)" + (" AS value" if alias else "")
    return f"SELECT {', '.join(key)}, {value} FROM {source} GROUP BY {by}"


def _summed_upsert(table: Table, key: list[str], source: str) -> str:
    """`INSERT INTO table SELECT key, SUM(value) FROM source GROUP BY key ORDER BY key ON
    CONFLICT …`."""
    by = ", ".join(str(n) for n in range(1, len(key) + 1))
    return _upsert_sql(table, f"{_sum_sql(key, source)} ORDER BY {by}")


def _upsert_sql(table: Table, rows: str) -> str:
    """`INSERT INTO table (columns) <rows> ON CONFLICT (primary key) DO UPDATE` adding the value."""
    cols = ", ".join(c.name for c in table.columns)
    pk = ", ".join(c.name for c in table.primary_key.columns)
    return (
        f"INSERT INTO {table.name} ({cols}) {rows}"
        f" ON CONFLICT ({pk}) DO UPDATE SET value = {table.name}.value + excluded.value"
    )


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


def has_weeks(group_by: str | None) -> bool:
    """Whether a grouping has weekly rollups (`split_periods(weeks=…)`)."""
    return ("week", group_by) in ROLLUPS


def _source(group_by: str | None, period: str) -> tuple[Table, Any]:
    """The table to sum for a grouping over whole periods ("15m": the 15-minute rows)."""
    if period == "15m":
        return components, components.c.interval_start
    table = ROLLUPS.get((period, group_by))
    if table is None:
        raise ValueError(f"no {period} rollup keeps {group_by}")
    return table, table.c[period]


def _bin_read_as(table: Table, needs: Needs | None, blocks: Iterable[str] = ()) -> Any:
    """The bin a stored row is read as: `Needs.read_as` in SQL, a CASE on the few histogram
    names it changes (the raw bin without needs); a sketch in `blocks`: its block of BLOCK bins."""
    name, bin_ = table.c.name, table.c.bin
    # the sketches first: most of a fine row set's rows (a fine day per queue at 10^7: 26k of
    # 38k), and every row runs the WHENs in order until one holds (they exclude each other: a
    # sketch in `blocks` is read, so it is in the needs and has no limits) — the day's
    # aggregation ≈ 8.4 -> 7.7 ms, fastest of 40 runs
    whens: list[tuple[Any, Any]] = [(name == n, bin_ // BLOCK) for n in blocks]
    if needs is not None:
        whens += [(name == n, 0) for n in HISTOGRAMS if n not in needs.names]
        whens += [
            (name == n, case(*((bin_ <= lim, lim) for lim in limits), else_=limits[-1] + 1))
            for n, limits in needs.limits.items()
        ]
    return case(*whens, else_=bin_) if whens else bin_


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
    rows, "hour", "six_hours", "day", "week" or "month" (start and end at such boundaries) that rollup, whose
    intervals are then hours, days or months; a piece of sign -1 is subtracted (exact: every
    component is an integer sum). `needs`: only what some KPIs read (`Needs.reduce`; quantiles
    in SQL only for one total per group of a grouping: they do not add up over intervals)."""
    # one total per group of a grouping: each sketch the KPIs read only quantiles of is read in
    # two steps, its counts per block of BLOCK bins, then the bins of the blocks holding the
    # quantiles (the sketches' bins are most rows of a grouped read; their quantiles do not add
    # up over intervals, so only here)
    sketches = needs.quantiles if needs is not None and group_by and not by_interval else {}
    pieces = [Piece(*p) for p in pieces]  # (start, end, period[, sign]) tuples too
    pg = session.get_bind().dialect.name == "postgresql"
    # with 15-minute rows (agent groupings, ragged edges), or on PostgreSQL a piece that does not
    # list its periods, the bins of a block are no key range: there one statement's window over
    # every bin picks the quantiles (else PostgreSQL does both steps in one statement)
    windowed = any(p.period == "15m" for p in pieces) or (pg and not _seekable(pieces))
    pairs = [(name, q) for name, qs in sketches.items() for q in qs]
    qs = sorted({q for _, q in pairs})
    key = (tuple(pieces), tenant, group_by, by_interval, names and tuple(names), needs, pg)
    kept = _STATEMENTS.get(key)
    if kept is None:  # the same read again (a wallboard, a dashboard's refresh): built once
        if len(_STATEMENTS) >= STATEMENTS_KEPT:
            _STATEMENTS.clear()
        stmt = _statement(
            pieces, tenant, group_by, by_interval, names, needs, pg, sketches, pairs, windowed, qs
        )
        kept = _STATEMENTS[key] = (stmt, _compiled(session, stmt) if pg else None)
    stmt, compiled = kept
    out: dict[tuple[str, datetime | None], Totals] = {}
    blocks: dict[tuple[str, str], dict[int, int]] = {}
    found: dict[tuple[str, str, float], tuple[int, int, int]] = {}
    g, slot = "", None
    # PostgreSQL: asyncpg's records as they come, on the session's connection (≈ 1,300-1,500
    # rows of a per-queue read, 200 of them with two arrays each; SQLAlchemy's result rows and
    # type processing cost ≈ 1.5 ms of it)
    rows: Sequence[Any] | None = await driver.fetch(session, *compiled) if compiled else None
    if rows is None:
        rows = (await session.execute(stmt)).all()
    for row in rows:
        name, bin_, value = row[0], row[1], int(row[-1])
        if group_by:
            g = row[2]
        if by_interval:
            slot = utc(row[2 + bool(group_by)])
        totals = out.get((g, slot))
        if totals is None:
            totals = out[(g, slot)] = Totals()
        if name is None:  # a slot's row from `_slots`
            continue
        if name not in sketches:  # (`Totals.add` inlined: ≈ 1,100 rows of a per-queue read)
            values = totals.values
            values[(name, bin_)] = values.get((name, bin_), 0) + value
        elif windowed:  # (name, bin, grp, index in qs, count)
            totals.quantiles[(name, qs[row[3]])] = bin_ if value else None
        elif not pg:
            blocks.setdefault((g, name), {})[bin_] = value
        else:  # (name, block, grp, pair, its bins, their values, rank, before); rank None: empty
            totals.quantiles[pairs[row[3]]] = (
                None if row[-2] is None else _in_block(row[4], row[5], row[-2], value)
            )
    for (g, name), counts in blocks.items():
        for q in sketches[name]:
            at = quantile_block(counts, q)
            if at is None:
                out[(g, None)].quantiles[(name, q)] = None
            else:
                found[(g, name, q)] = at
    if found:  # SQLite: step 2 in a second statement
        await _quantiles(session, out, found, tenant, pieces, group_by)
    if any(p.sign < 0 for p in pieces):
        await _drop_absent(session, out, tenant, exact(list(pieces)), group_by, names)
    return out


# built first statements of `sums` by their inputs (SQLAlchemy caches the compiled SQL, but
# building the statement with its inlined arrays was ≈ 3 ms of a `group_by=queue` read), with
# their SQL and arguments for asyncpg (PostgreSQL)
_STATEMENTS: dict[tuple[Any, ...], tuple[Any, tuple[str, list[Any]] | None]] = {}
STATEMENTS_KEPT = 512


def _compiled(session: AsyncSession, stmt: Any) -> tuple[str, list[Any]]:
    """`stmt`'s SQL for asyncpg (`$n` parameters, the inlined arrays rendered) and its arguments."""
    sql, binds, compiled = _for_driver(session, stmt)
    return sql, _arguments(binds, compiled.construct_params())


def _for_driver(session: AsyncSession, stmt: Any) -> tuple[str, list[tuple[str, Any]], Any]:
    """`stmt`'s SQL for asyncpg, its parameters' names in order, each with its bind processor
    (None: the value as it is), and the compiled statement."""
    compiled: Any = stmt.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    processors = compiled._bind_processors
    binds = [(k, processors.get(k)) for k in compiled.positiontup]
    return compiled.string, binds, compiled


def _arguments(binds: list[tuple[str, Any]], params: Mapping[str, Any]) -> list[Any]:
    return [process(params[k]) if process else params[k] for k, process in binds]


async def kept_rows(session: AsyncSession, stmt: Any, params: Mapping[str, Any]) -> Sequence[Any]:
    """The rows of a statement built once (a module's constant) with these parameters; on
    PostgreSQL on the unit of work's asyncpg connection, compiled once (through the session a
    cached statement costs ≈ 150-200 µs of client CPU, on the driver ≈ 30: `sbkit.db.driver`;
    every `/v1/kpis` read runs two such)."""
    if session.get_bind().dialect.name == "postgresql":
        kept = _DRIVER_SQL.get(id(stmt))
        if kept is None:
            kept = _DRIVER_SQL[id(stmt)] = (stmt, *_for_driver(session, stmt)[:2])
        _, sql, binds = kept
        rows = await driver.fetch(session, sql, _arguments(binds, params))
        if rows is not None:
            return rows
    return (await session.execute(stmt, params)).all()


# statements run by `kept_rows` by their id: (the statement, kept alive, its SQL, its binds)
_DRIVER_SQL: dict[int, tuple[Any, str, list[tuple[str, Any]]]] = {}


def _statement(
    pieces: list[Piece],
    tenant: str,
    group_by: str | None,
    by_interval: bool,
    names: Sequence[str] | None,
    needs: Needs | None,
    pg: bool,
    sketches: Mapping[str, tuple[float, ...]],
    pairs: list[tuple[str, float]],
    windowed: bool,
    qs: list[float],
) -> Any:
    """The first statement of `sums`: the pieces' rows summed (and a grouping's quantile blocks
    picked, or its quantiles by a window over the bins of 15-minute pieces)."""
    blocked = {} if windowed else sketches
    narrow = _narrow(needs, names, group_by)
    reads = [
        _read(p, tenant, group_by, by_interval, names, needs, blocked, narrow=narrow)
        for p in pieces
    ]
    if narrow and by_interval:  # the slots whose rows hold none of those names too
        reads += [_slots(p, tenant, pg) for p in pieces if p.sign > 0 and _starts(p)]
    stmt = _summed(reads, group_by, by_interval)
    if sketches and windowed:
        return _windowed(stmt, sketches, qs)
    if pg and sketches:  # both steps in SQL, in this statement: one row per quantile
        return _blocks_picked(
            stmt, pairs, lambda p: [_block_bins(piece, tenant, group_by, p) for piece in pieces]
        )
    return stmt


def _seekable(pieces: Sequence[Piece]) -> bool:
    """Whether every piece lists its periods (`_starts`): then each block's bins are a
    primary-key range per period, read by step 2 inside the first statement (PostgreSQL)."""
    return all(_starts(p) is not None for p in pieces)


def _block_bins(piece: Piece, tenant: str, group_by: str | None, p: Any) -> Any:
    """(bin, value times the sign) of one piece's stored bins of the block of a row of `p`
    (grp, name, bin = the block; correlated: a primary-key range scan per period)."""
    table, at = _source(group_by, piece.period)
    value = table.c.value if piece.sign > 0 else -table.c.value
    lo = p.c.bin * BLOCK
    return (
        select(table.c.bin.label("bin"), value.label("value"))
        .where(
            table.c.tenant_id == tenant,
            _inlined(at, _starts(piece) or []),
            table.c[group_by or ""] == p.c.grp,
            table.c.name == p.c.name,
            table.c.bin.between(lo, lo + BLOCK - 1),
        )
        .correlate(p)
    )


def _narrow(needs: Needs | None, names: Sequence[str] | None, group_by: str | None) -> list[str]:
    """The only names a read's rollup pieces (periods listed: day, hour, month) need to read:
    those of its KPIs, for one total (per slot) with few of them, else [] (every name). A
    grouping's reads keep every name: an `IN` list filtered every row of a range (twice
    PostgreSQL's time), and a group whose rows hold none of the names must still be answered."""
    if needs is None or names is not None or group_by or len(needs.names) > NARROW_NAMES:
        return []
    return sorted(needs.names)


def _inlined(column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN (values)` with the values in the SQL: planned for them, not generically."""
    return column.in_(bindparam(None, list(values), expanding=True, literal_execute=True))


def _literal(at: datetime) -> Any:
    """A period bound rendered into the SQL (planned for it, not generically)."""
    return bindparam(None, at, type_=DateTime(timezone=True), literal_execute=True)


def _named(table: Table, names: Sequence[str], needs: Needs | None) -> ColumnElement[bool]:
    """The rows of these names; of a histogram the KPIs count only up to thresholds (`Needs.limits`,
    read through `Totals.upto` alone), only its bins up to the largest (the per-second wait
    histograms are most of a day's rows, their bins past T none of the KPIs' business).
    PostgreSQL: a bitmap index scan per arm, each a range per period and name."""
    limits = needs.limits if needs is not None else {}
    tops = {n: limits[n][-1] for n in names if n in limits}
    plain = [n for n in names if n not in tops]
    arms = [_inlined(table.c.name, plain)] if plain else []
    arms += [
        and_(
            table.c.name == bindparam(None, n, literal_execute=True),
            table.c.bin <= bindparam(None, top, literal_execute=True),
        )
        for n, top in sorted(tops.items())
    ]
    return or_(*arms)


def _slots(piece: Piece, tenant: str, pg: bool) -> Any:
    """One row (name NULL, bin 0, at, 0) per period of a rollup piece that has any stored row:
    a narrowed read keeps exactly the slots of the stored rows. PostgreSQL: an index probe per
    period (`EXISTS` over the listed periods); SQLite: the distinct periods of the rows."""
    table, at = _source(None, piece.period)
    starts = _starts(piece) or []
    cols = (cast(null(), String).label("name"), literal(0).label("bin"))
    if not pg:
        rows = select(*cols, at.label("at"), literal(0).label("value"))
        return rows.where(table.c.tenant_id == tenant, at.in_(starts)).distinct()
    stamps = postgresql.ARRAY(DateTime(timezone=True))
    d = (
        func.unnest(cast(literal(starts, stamps, literal_execute=True), stamps))
        .table_valued("at")
        .render_derived(name="d")
    )
    stored = select(literal(1)).where(table.c.tenant_id == tenant, at == d.c.at).exists()
    return select(*cols, d.c.at.label("at"), literal(0).label("value")).where(stored)


def _windowed(summed: Any, sketches: Mapping[str, tuple[float, ...]], qs: list[float]) -> Any:
    """`summed` (name, bin, grp, value) with each sketch's bins replaced by one row per requested
    quantile: name, the quantile's bucket, grp, its index in `qs`, the sketch's count. Exactly
    `LogHistogram.quantile_bin`: the first bin (in order) whose running count c passes rank
    floor(q(n - 1)) — for an integer c, c > floor(x) iff c > x, and both compute x in IEEE
    doubles — else the last bin."""
    agg = summed.cte("agg")
    part = [agg.c.grp, agg.c.name]
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
    picked = (
        select(
            win.c.grp,
            win.c.name,
            func.max(win.c.bin).label("top"),
            func.max(win.c.n).label("n"),
            *(
                func.min(
                    case((win.c.run > literal(q, Float) * cast(win.c.n - 1, Float), win.c.bin))
                ).label(f"b{i}")
                for i, q in enumerate(qs)
            ),
        )
        .group_by(win.c.grp, win.c.name)
        .cte("picked")
    )
    rows = [
        select(
            picked.c.name,
            func.coalesce(picked.c[f"b{i}"], picked.c.top),
            picked.c.grp,
            literal(i),
            picked.c.n,
        ).where(picked.c.name.in_([s for s, sqs in sketches.items() if q in sqs]))
        for i, q in enumerate(qs)
    ]
    plain = select(agg.c.name, agg.c.bin, agg.c.grp, cast(null(), Integer), agg.c.value).where(
        agg.c.name.not_in(list(sketches))
    )
    return union_all(plain, *rows)


def _blocks_picked(
    summed: Any, pairs: list[tuple[str, float]], bins: Callable[[Any], list[Any]]
) -> Any:
    """Both steps of the quantiles in SQL (PostgreSQL): `summed` (name, bin, grp, value; a
    sketch's bin is its block) with each sketch's blocks replaced by one row per (sketch, q) of
    `pairs`: name, the quantile's bin, grp, the index in `pairs`, the rank floor(q(n - 1))
    (None when n = 0: empty) and the count before its block. Step 1 (`quantile_block`) picks
    the block whose running count first passes the rank — one aggregation per (group, sketch)
    over its blocks' running counts: the first such block is the least of them, and so is its
    count before (counts are never negative) —; step 2 (`quantile_in_block`) the first
    bin whose running count in the block from the count before passes it, from `bins` (the
    pieces' reads of a picked block's stored bins, correlated to its row) in a LATERAL
    subquery per picked row — ≈ 16 bins each, no second statement, no arrays sent back."""
    s = summed.cte("s")
    names = sorted({name for name, _ in pairs})
    qs = sorted({q for _, q in pairs})
    part = [s.c.grp, s.c.name]
    running = func.sum(s.c.value).over(partition_by=part, order_by=s.c.bin, rows=(None, 0))
    k = (
        select(
            *part,
            s.c.bin,
            s.c.value,
            cast(running, BigInteger).label("run"),
            cast(func.sum(s.c.value).over(partition_by=part), BigInteger).label("n"),
        )
        .where(s.c.name.in_(names))
        .subquery("k")
    )
    ranks = [cast(func.floor(literal(q, Float) * cast(k.c.n - 1, Float)), BigInteger) for q in qs]
    agg = (
        select(
            k.c.grp,
            k.c.name,
            func.max(k.c.n).label("n"),
            *(func.min(case((k.c.run > r, k.c.bin))).label(f"b{j}") for j, r in enumerate(ranks)),
            *(
                func.min(case((k.c.run > r, k.c.run - k.c.value))).label(f"f{j}")
                for j, r in enumerate(ranks)
            ),
        )
        .group_by(k.c.grp, k.c.name)
        .cte("a")
    )
    picked = [
        select(
            agg.c.name,
            agg.c[f"b{qs.index(q)}"].label("bin"),
            agg.c.grp,
            literal(i).label("i"),
            case(
                (
                    agg.c.n > 0,
                    cast(func.floor(literal(q, Float) * cast(agg.c.n - 1, Float)), BigInteger),
                )
            ).label("rank"),
            agg.c[f"f{qs.index(q)}"].label("before"),
        ).where(agg.c.name == name)
        for i, (name, q) in enumerate(pairs)
    ]
    nulls = (cast(null(), postgresql.ARRAY(Integer)), cast(null(), postgresql.ARRAY(BigInteger)))
    plain = select(
        s.c.name,
        s.c.bin,
        s.c.grp,
        cast(null(), Integer),
        *nulls,
        cast(null(), BigInteger),
        s.c.value,
    ).where(s.c.name.not_in(names))
    p = union_all(*picked).cte("p")
    u = union_all(*bins(p)).subquery("u")
    q = select(
        func.array_agg(u.c.bin).label("bins"), func.array_agg(u.c.value).label("vals")
    ).lateral("q")
    found = select(
        p.c.name, p.c.bin, p.c.grp, p.c.i, q.c.bins, q.c.vals, p.c.rank, p.c.before
    ).select_from(p.join(q, true()))
    return union_all(plain, found)


def _in_block(bins: list[int], values: list[int], rank: int, before: int) -> int:
    """Step 2 of a quantile from the stored bins of its block over the pieces (a bin once per
    piece, values signed): `quantile_in_block` of their sums."""
    summed: dict[int, int] = {}
    for b, v in zip(bins, values, strict=True):
        summed[b] = summed.get(b, 0) + v
    return quantile_in_block(summed, rank, before)


def _summed(reads: list[Any], group_by: str | None, by_interval: bool) -> Any:
    """The reads' rows summed per name, bin, [grp], [at]."""
    both: Any = union_all(*reads) if len(reads) > 1 else reads[0]
    read = both.subquery("read")
    keys = [read.c.name, read.c.bin]
    keys += [read.c.grp] if group_by else []
    keys += [read.c.at] if by_interval else []
    # as bigint (every stored value is one, and so is any sum a read can reach): PostgreSQL's
    # SUM of bigint is numeric, which the driver decodes into Decimal (≈ 0.45 ms more client CPU
    # for the 1,307 rows of a per-queue read)
    value = cast(func.sum(read.c.value), BigInteger).label("value")
    return select(*keys, value).group_by(*keys)


async def _quantiles(
    session: AsyncSession,
    out: dict[tuple[str, datetime | None], Totals],
    found: dict[tuple[str, str, float], tuple[int, int, int]],
    tenant: str,
    pieces: Sequence[Piece],
    group_by: str | None,
) -> None:
    """Step 2 on SQLite: each (group, sketch, q)'s quantile from the bins of the block that
    holds it (its block, rank, count before the block in `found`), summed over the pieces in one
    statement: exactly `LogHistogram.quantile_bin`."""
    wanted = sorted({(g, name, block) for (g, name, _), (block, _, _) in found.items()})
    reads = [_read(p, tenant, group_by, False, None, None, {}, wanted) for p in pieces]
    fine = _summed(reads, group_by, False)
    bins: dict[tuple[str, str, int], dict[int, int]] = {}
    for name, bin_, g, value in await session.execute(fine):
        bins.setdefault((g, name, bin_ // BLOCK), {})[bin_] = int(value)
    for (g, name, q), (block, rank, before) in found.items():
        b = quantile_in_block(bins[(g, name, block)], rank, before)
        out[(g, None)].quantiles[(name, q)] = b


def _read(
    piece: Piece,
    tenant: str,
    group_by: str | None,
    by_interval: bool,
    names: Sequence[str] | None,
    needs: Needs | None,
    blocks: Iterable[str] = (),
    only: Sequence[tuple[str, str, int]] = (),
    *,
    narrow: Sequence[str] = (),
) -> Any:
    """The rows of one piece: name, bin (as read), [grp], [at], value (times its sign); with
    `only`, just the bins of those (grp, sketch, block)s; with `narrow`, a rollup piece's rows
    of those names only (a primary-key range scan per period and name). A piece with a coarse
    rollup (`orm.COARSE`) reads it when the needs allow (`Needs.coarse`): its sketches are
    stored as blocks already, its wait histograms as 5-second blocks, each band's limit a
    block's bound; so does a read of some `names` the coarse rollup keeps bin for bin
    (`parts.coarse_keeps`: a per-queue backlog history, ≈ 4x fewer rows to scan for its few
    names)."""
    table, at = _source(group_by, piece.period)
    coarse = COARSE.get((piece.period, group_by))
    if coarse is not None and not only and not narrow:
        if needs.coarse(blocks) if needs is not None else names and coarse_keeps(names):
            table, at, blocks = coarse, coarse.c[piece.period], ()
    cols: list[Any] = [table.c.name.label("name"), _bin_read_as(table, needs, blocks).label("bin")]
    cols += [table.c[group_by].label("grp")] if group_by else []
    cols += [at.label("at")] if by_interval else []
    value = table.c.value if piece.sign > 0 else -table.c.value
    rows = select(*cols, value.label("value")).where(table.c.tenant_id == tenant)
    starts = _starts(piece) if only or narrow else None
    if starts is not None and narrow:  # (tenant, period, name, bin) keys: period x name seeks
        rows = rows.where(_inlined(at, starts), _named(table, narrow, needs))
    elif starts is not None:  # equal to each period's start: the key's later columns seek too
        rows = rows.where(_inlined(at, starts))
    else:  # bounds in the SQL: a prepared statement's generic plan (from its 6th run) scanned
        # the 6-hourly rows of every day for a half day (7 -> 12-16 ms)
        rows = rows.where(at < _literal(piece.end))
        if piece.start is not None:
            rows = rows.where(at >= _literal(piece.start))
    if names is not None:
        rows = rows.where(table.c.name.in_(names))
    if only and group_by:
        rows = _only_blocks(rows, table, table.c[group_by], only)
    return rows


def _starts(piece: Piece) -> list[datetime] | None:
    """The start of every period of a rollup piece (None: 15-minute rows, from the beginning,
    or too many)."""
    step = {
        "hour": lambda at: at + HOUR,
        "six_hours": lambda at: at + SIX_HOURS,
        "day": lambda at: at + DAY,
        "week": next_week,
        "month": next_month,
    }
    if piece.start is None or piece.period not in step:
        return None
    out: list[datetime] = []
    at = piece.start
    while at < piece.end and len(out) <= 400:
        out.append(at)
        at = step[piece.period](at)
    return out if at >= piece.end else None


def _only_blocks(rows: Any, table: Table, grp: Any, only: Sequence[tuple[str, str, int]]) -> Any:
    """`rows` restricted to the bins of some (grp, name, block)s (SQLite's step 2): an OR."""
    lo = table.c.bin.between
    return rows.where(
        or_(
            *(
                and_(grp == g, table.c.name == n, lo(b * BLOCK, b * BLOCK + BLOCK - 1))
                for g, n, b in only
            )
        )
    )


async def _drop_absent(
    session: AsyncSession,
    out: dict[tuple[str, datetime | None], Totals],
    tenant: str,
    pieces: list[Piece],
    group_by: str | None,
    names: Sequence[str] | None,
) -> None:
    """After a subtraction, drop the groups that have no stored row in the range (their rows
    were all in the days subtracted): a read of the range's rows would not return them. Only a
    group whose every sum is 0 can be one; whether it has rows is looked up in `pieces` (the
    range without subtraction)."""
    zero = [
        key
        for key, t in out.items()
        if not any(t.values.values()) and all(b is None for b in t.quantiles.values())
    ]
    if not zero:
        return
    groups = {g for g, _ in zero}
    found = set()
    for piece in pieces:
        table, at = _source(group_by, piece.period)
        grp = table.c[group_by] if group_by else literal("")
        rows = select(grp).where(table.c.tenant_id == tenant, at < piece.end).distinct()
        if piece.start is not None:
            rows = rows.where(at >= piece.start)
        if group_by:
            rows = rows.where(grp.in_(groups))
        if names is not None:
            rows = rows.where(table.c.name.in_(names))
        found |= {g for (g,) in await session.execute(rows)}
    for key in zero:
        if key[0] not in found:
            del out[key]


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


_THRESHOLDS = select(thresholds).where(thresholds.c.tenant_id == bindparam("tenant"))


async def get_thresholds(session: AsyncSession, tenant: str) -> dict[str, Threshold]:
    """A tenant's traffic-light thresholds by KPI (the statement built once, as every read of
    `/v1/kpis` runs it)."""
    rows = await kept_rows(session, _THRESHOLDS, {"tenant": tenant})
    return {
        kpi: Threshold(green_at, red_at, Direction(direction))
        for _, kpi, green_at, red_at, direction in rows
    }


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
