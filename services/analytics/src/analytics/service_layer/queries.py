"""Use cases that read KPIs: values with their lights per group and interval, trends, thresholds."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.adapters import facts, repository
from analytics.domain import presence
from analytics.domain.components import (
    DAY,
    INTERVAL,
    Piece,
    cost,
    day_of,
    interval_of,
    split_periods,
)
from analytics.domain.kpis import (
    CUMULATIVE,
    FINAL,
    KPIS,
    Params,
    Totals,
    UnknownChoice,
    check_kpis,
    check_names,
)
from analytics.domain.lights import Colour, Direction, Threshold, threshold_of
from analytics.domain.parts import Needs, needs
from analytics.service_layer.errors import InvalidQuery
from sbkit.db.uow import UnitOfWork

GROUPINGS = repository.GROUPS
BACKLOG_PARTS = ("opened", "reopened", "resolved")
CUMULATIVE_PARTS = (*BACKLOG_PARTS, "age_gt")
FCR_PARTS = ("fcr_n", "fcr_rep_h")


@dataclass(frozen=True)
class KpiQuery:
    """What `GET /v1/kpis` asks for."""

    start: datetime
    end: datetime
    kpis: Sequence[str]
    params: Params = field(default_factory=Params)
    group_by: str | None = None
    interval: timedelta | None = None  # None: one total over the range
    now: datetime | None = None  # when FCR windows close and open presence spans end (None: now)

    def moment(self) -> datetime:
        """The query's "now"."""
        return self.now or datetime.now(UTC)


def validate(q: KpiQuery, *, retention: timedelta) -> None:
    """422 with the valid choices for unknown names, reversed ranges and ranges over the retention."""
    try:
        check_names(q.kpis, q.params.variant)
    except UnknownChoice as exc:
        raise InvalidQuery(str(exc), valid=exc.valid) from exc
    if q.group_by is not None and q.group_by not in GROUPINGS:
        raise InvalidQuery(f"unknown group_by: {q.group_by}", valid=list(GROUPINGS))
    if q.start >= q.end:
        raise InvalidQuery("from must be before to")
    if q.end - q.start > retention:
        raise InvalidQuery(f"range over the retention of {retention.days} days")
    if q.interval is not None and (q.interval < INTERVAL or q.interval % INTERVAL):
        raise InvalidQuery("interval must be a multiple of 15 minutes")


def _days_fit(q: KpiQuery) -> bool:
    """Whether every whole UTC day of the range falls in one slot of the answer (then whole days
    may be read from the daily rollups): one total, or day-multiple slots from a midnight."""
    return q.interval is None or (not q.interval % DAY and q.start == day_of(q.start))


async def _sums(
    uow: UnitOfWork,
    tenant: str,
    q: KpiQuery,
    *,
    start: datetime | None,
    end: datetime,
    by_interval: bool = False,
    names: Sequence[str] | None = None,
    needs: Needs | None = None,
) -> dict[tuple[str, datetime | None], Totals]:
    """`repository.sums` over [start, end): whole days and months (or a month minus its days
    outside the range) from the rollups where the grouping and the slots allow, the ragged
    edges from the hourly rollup (totals) and the 15-minute rows (and agent groupings from
    these), summed in one statement."""
    pieces = [Piece(start, end, "15m")]
    if q.group_by != "agent" and (not by_interval or _days_fit(q)):
        pieces = split_periods(
            start,
            end,
            months=not by_interval,
            hours=q.group_by is None,
            weeks=repository.has_weeks(q.group_by),
        )
    return await repository.sums(
        uow.session,
        tenant=tenant,
        pieces=pieces,
        group_by=q.group_by,
        by_interval=by_interval,
        names=names,
        needs=needs,
    )


def _slot(q: KpiQuery, at: datetime | None) -> datetime:
    if q.interval is None or at is None:
        return q.start
    return q.start + ((at - q.start) // q.interval) * q.interval


def _regroup(
    q: KpiQuery, sums: dict[tuple[str, datetime | None], Totals]
) -> dict[tuple[str, datetime], Totals]:
    out: dict[tuple[str, datetime], Totals] = {}
    for (group, at), totals in sums.items():
        key = (group, _slot(q, at))
        if key in out:
            out[key].merge(totals)
        else:  # the first of its slot: taken as it is (`sums`' totals are not used again)
            out[key] = totals
    return out


def _history_to_end(q: KpiQuery) -> bool:
    """Whether one total per group reads its since-the-beginning parts up to `to` directly
    rather than before `from` plus its own: when that plan reads fewer days' worth of rows (the
    last 30 days to a month's end: months only, instead of the day before `from` per queue,
    ≈ 38k fine rows a day at 10^7). Exact either way (integer sums). Only for `to` at a UTC
    midnight: a ragged end would read its partial day's 15-minute rows, which `cost` does not
    count."""
    if q.interval is not None or q.group_by == "agent" or q.end != day_of(q.end):
        return False
    plan = functools.partial(
        split_periods, None, months=True, hours=q.group_by is None,
        weeks=repository.has_weeks(q.group_by),
    )  # fmt: skip
    return cost(plan(q.end)) < cost(plan(q.start))


async def _cumulative(
    uow: UnitOfWork, tenant: str, q: KpiQuery, rows: dict[tuple[str, datetime], Totals]
) -> None:
    """Give each row the backlog parts summed since the beginning up to its slot's end (`*_cum`):
    the history before `from` plus the row's own parts, or (`_history_to_end`) the history up
    to `to`."""
    if _history_to_end(q):
        upto = await _sums(uow, tenant, q, start=None, end=q.end, names=CUMULATIVE_PARTS)
        for (group, _), row in rows.items():
            history = upto.get((group, None))
            for (name, bin_), value in history.values.items() if history else ():
                row.add(name + "_cum", bin_, value)
        return
    before = await _sums(uow, tenant, q, start=None, end=q.start, names=CUMULATIVE_PARTS)
    running = {g: t for (g, _), t in before.items()}
    for key in sorted(rows, key=lambda k: k[1]):
        acc = running.setdefault(key[0], Totals())
        acc.merge(Totals({k: v for k, v in rows[key].values.items() if k[0] in CUMULATIVE_PARTS}))
        for (name, bin_), value in acc.values.items():
            rows[key].add(name + "_cum", bin_, value)  # each key once: sets it


async def _final(
    uow: UnitOfWork, tenant: str, q: KpiQuery, rows: dict[tuple[str, datetime], Totals]
) -> None:
    """Add `final_*` FCR parts: resolutions in intervals whose N-day window closed before now."""
    cutoff = interval_of(q.moment() - timedelta(days=q.params.fcr_days))
    if cutoff <= q.start:
        return
    if cutoff >= q.end:  # every window of the range closed: its own FCR parts, no second read
        found = {
            key: Totals({k: v for k, v in t.values.items() if k[0] in FCR_PARTS})
            for key, t in rows.items()
        }
    else:
        sums = await _sums(
            uow,
            tenant,
            q,
            start=q.start,
            end=cutoff,
            by_interval=q.interval is not None,
            names=FCR_PARTS,
        )
        found = _regroup(q, sums)
    for key, t in found.items():
        row = rows.setdefault(key, Totals())
        for (name, bin_), value in t.values.items():
            row.add("final_" + name, bin_, value)


async def _open_online(
    uow: UnitOfWork, tenant: str, q: KpiQuery, rows: dict[tuple[str, datetime], Totals]
) -> None:
    """Online time of agents still online since their latest presence change (not stored yet)."""
    stop = min(q.end, q.moment())
    for agent, at, state in await facts.latest_presence(uow.session, tenant):
        if state != presence.ONLINE or at >= stop:
            continue
        group = agent if q.group_by == "agent" else ""
        for slot, ms in presence.split(max(at, q.start), stop):
            rows.setdefault((group, _slot(q, slot)), Totals()).add("online_ms", 0, ms)


def _rows(
    q: KpiQuery, rows: dict[tuple[str, datetime], Totals], lights: dict[str, Threshold]
) -> list[dict[str, Any]]:
    """The answer's rows in (slot, group) order: each KPI's value with its light (the KPIs'
    formulas and thresholds looked up once per answer, not per row and KPI)."""
    # (name, formula, its light or None, whether it reads the since-the-beginning parts)
    cells_of = [(k, KPIS[k], threshold_of(k, lights), k in CUMULATIVE) for k in q.kpis]
    snapshot = any(c for *_, c in cells_of)
    none, params = Colour.NONE.value, q.params
    out = []
    for key in sorted(rows, key=lambda k: (k[1], k[0])):
        t = cum = rows[key]
        if snapshot:  # only these see the since-the-beginning parts (`opened` stays in-range)
            cum = Totals({**t.values, **{(p, 0): t.c(p + "_cum") for p in BACKLOG_PARTS}})
        cells = {}
        for k, formula, th, cumulative in cells_of:
            value = formula(cum if cumulative else t, params)
            cells[k] = {"value": value, "colour": th.light(value) if th else none}
        row: dict[str, Any] = {"kpis": cells}
        if q.group_by:
            row[q.group_by] = key[0]
        if q.interval is not None:
            row["interval_start"] = key[1].isoformat()
        out.append(row)
    return out


async def kpis(uow: UnitOfWork, tenant: str, q: KpiQuery) -> dict[str, Any]:
    """The KPIs of a tenant per group and interval over [start, end); cost O(buckets in range)."""
    sums = await _sums(
        uow,
        tenant,
        q,
        start=q.start,
        end=q.end,
        by_interval=q.interval is not None,
        needs=needs(q.kpis, q.params),
    )
    rows = _regroup(q, sums)
    if not rows and q.group_by is None:
        rows = {("", q.start): Totals()}
    if CUMULATIVE & set(q.kpis):
        await _cumulative(uow, tenant, q, rows)
    if FINAL & set(q.kpis):
        await _final(uow, tenant, q, rows)
    if "occupancy" in q.kpis:
        await _open_online(uow, tenant, q, rows)
    lights = await repository.get_thresholds(uow.session, tenant)
    return {
        "from": q.start.isoformat(),
        "to": q.end.isoformat(),
        "variant": q.params.variant,
        "threshold_s": q.params.threshold_s,
        "short_abandon_s": q.params.short_abandon_s,
        "fcr_days": q.params.fcr_days,
        "rows": _rows(q, rows, lights),
    }


async def category_trends(uow: UnitOfWork, tenant: str, q: KpiQuery) -> dict[str, Any]:
    """Classified cases per contact reason per interval, with each reason's share of the interval."""
    pieces = [Piece(q.start, q.end, "15m")]
    if _days_fit(q):
        pieces = split_periods(q.start, q.end, months=q.interval is None, hours=True)
    slots: dict[datetime, dict[str, int]] = {}
    for piece in pieces:  # (a month minus days: one slot, the days' counts subtracted)
        for at, category, n in await repository.categories(
            uow.session, tenant=tenant, start=piece.start, end=piece.end, period=piece.period
        ):
            counts = slots.setdefault(_slot(q, at), {})
            counts[category] = counts.get(category, 0) + piece.sign * n
    # a category re-classified away within a slot sums to 0 there: not a reason of that slot
    slots = {at: {c: n for c, n in cs.items() if n} for at, cs in slots.items()}
    slots = {at: cs for at, cs in slots.items() if cs}
    return {
        "from": q.start.isoformat(),
        "to": q.end.isoformat(),
        "rows": [
            {
                "interval_start": at.isoformat(),
                "categories": {
                    c: {"count": n, "share": n / sum(counts.values())}
                    for c, n in sorted(counts.items())
                },
            }
            for at, counts in sorted(slots.items())
        ],
    }


async def put_thresholds(
    uow: UnitOfWork, tenant: str, body: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Set a tenant's traffic-light thresholds for some KPIs (422 for unknown KPIs or contradictions)."""
    try:
        check_kpis(body)
        values = {
            k: Threshold(v["green_at"], v["red_at"], Direction(v["direction"]))
            for k, v in body.items()
        }
    except UnknownChoice as exc:
        raise InvalidQuery(str(exc), valid=exc.valid) from exc
    except ValueError as exc:  # InvalidThreshold, or an unknown direction
        raise InvalidQuery(str(exc)) from exc
    await repository.put_thresholds(uow.session, tenant, values)
    current = await repository.get_thresholds(uow.session, tenant)
    return {
        k: {"green_at": t.green_at, "red_at": t.red_at, "direction": t.direction.value}
        for k, t in current.items()
    }
