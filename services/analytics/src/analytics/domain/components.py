"""Additive components: what each input event adds to its (tenant, queue, channel, agent, interval) bucket.

Only counts and integer-millisecond sums (and per-bin counts of histograms) are stored; every
ratio is computed on read. Attribution: an offer counts where it was offered, an answer where
it was answered, an abandon where it was abandoned, handle time where wrap-up ended, a reply
or resolution where it happened, a survey where it was answered.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from analytics.domain.sketch import bin_of

INTERVAL = timedelta(minutes=15)
MAX_WAIT_S = 3600  # waits over an hour share the last per-second bin
SCALAR = 0  # the bin of a plain counter


@dataclass(frozen=True)
class Bucket:
    """The dimensions of one stored bucket ('' when a dimension is unknown)."""

    tenant: str
    interval: datetime
    queue: str = ""
    channel: str = ""
    agent: str = ""


@dataclass(frozen=True)
class Increment:
    """Add `value` to component `name` (bin `bin` of a histogram, else 0) of a bucket."""

    name: str
    value: int
    bin: int = SCALAR


def interval_of(at: datetime) -> datetime:
    """The start of the 15-minute event-time interval holding `at` (UTC)."""
    at = at.astimezone(UTC)
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SIX_HOURS = timedelta(hours=6)


def day_of(at: datetime) -> datetime:
    """The UTC midnight starting the day of `at` (the key of the daily rollups)."""
    return interval_of(at).replace(hour=0, minute=0)


def six_of(at: datetime) -> datetime:
    """The start of the 6 hours (from a UTC midnight: 00, 06, 12, 18) holding `at`."""
    at = interval_of(at)
    return at.replace(hour=at.hour - at.hour % 6, minute=0)


def month_of(at: datetime) -> datetime:
    """The UTC midnight starting the calendar month of `at` (the key of the monthly rollups)."""
    return day_of(at).replace(day=1)


def next_month(at: datetime) -> datetime:
    return (month_of(at) + timedelta(days=32)).replace(day=1)


WEEK = timedelta(days=7)


def week_of(at: datetime) -> datetime:
    """The start of the week of the month holding `at`: weeks of a calendar month start on its
    days 1, 8, 15, 22 and 29 (the last one 0-3 days long), so a month is exactly its weeks (the
    key of the weekly rollups)."""
    day = day_of(at)
    return day.replace(day=1 + (day.day - 1) // 7 * 7)


def next_week(at: datetime) -> datetime:
    """The start of the week of the month after the one starting at `at`."""
    return min(at + WEEK, next_month(at))


class Piece(NamedTuple):
    """[start, end) read from the rows of `period` ("15m", "hour", "six_hours", "day", "week",
    "month"; start None: from the beginning), added (sign 1) or subtracted (-1: days or weeks of
    a month, or days of a week, outside the range)."""

    start: datetime | None
    end: datetime
    period: str
    sign: int = 1


# What a piece costs to read, in days: a busy week or month has about a busy day's rows (its
# bins are filled the same), a quiet one at most its days' rows. A week or month read whole
# minus its days (weeks) outside the range is chosen only when that costs strictly less than
# reading the days (weeks) inside.
MONTH_COST = 2
WEEK_COST = 2


def _ceil(
    at: datetime, floor: Callable[[datetime], datetime], step: Callable[[datetime], datetime]
) -> datetime:
    return at if floor(at) == at else step(floor(at))


def _hour_of(at: datetime) -> datetime:
    return interval_of(at).replace(minute=0)


def _edge(start: datetime, end: datetime, hours: bool) -> list[Piece]:
    """[start, end) within a day: 15-minute rows, and whole hours from the hourly rollup, of
    which whole 6 hours (00, 06, 12, 18) from the 6-hourly one."""
    first, last = _ceil(start, _hour_of, lambda h: h + HOUR), _hour_of(end)
    if not hours or first >= last:
        return [Piece(start, end, "15m")]
    pieces = [Piece(start, first, "15m")] if start < first else []
    pieces += _hours(first, last)
    return [*pieces, Piece(last, end, "15m")] if last < end else pieces


def _hours(first: datetime, last: datetime) -> list[Piece]:
    """Whole hours [first, last) within a day: whole 6 hours as such, the rest as hours."""
    a, b = _ceil(first, six_of, lambda s: s + SIX_HOURS), six_of(last)
    if a >= b:
        return [Piece(first, last, "hour")]
    pieces = [Piece(first, a, "hour")] if first < a else []
    pieces.append(Piece(a, b, "six_hours"))
    return [*pieces, Piece(b, last, "hour")] if b < last else pieces


def _negated(pieces: list[Piece]) -> list[Piece]:
    return [p._replace(sign=-p.sign) for p in pieces]


def cost(pieces: list[Piece]) -> int:
    """Days' worth of rows: a day piece its days, a week piece WEEK_COST per week, a month
    MONTH_COST."""
    total = 0
    for p in pieces:
        if p.period == "month":
            total += MONTH_COST
        elif p.period == "week" and p.start is not None:
            at = p.start
            while at < p.end:
                total, at = total + WEEK_COST, next_week(at)
        else:
            total += (p.end - (p.start or p.end)).days
    return total


def _joined(pieces: list[Piece]) -> list[Piece]:
    """Consecutive day (or week) pieces of the same sign as one (in the place of the first):
    one range read, and one index scan listing its periods in a grouping's quantile step,
    instead of one per piece."""
    out: list[Piece] = []
    for p in pieces:
        at = next(
            (
                i
                for i, q in enumerate(out)
                if q.period == p.period in ("day", "week") and q.sign == p.sign and q.end == p.start
            ),
            None,
        )
        if at is None:
            out.append(p)
        else:
            out[at] = out[at]._replace(end=p.end)
    return out


def _days(first: datetime, last: datetime, weeks: bool) -> list[Piece]:
    """Whole days [first, last) within one month; if `weeks`, as weeks of the month (`week_of`),
    each read whole, by its days in the range, or whole minus its days outside the range (the
    cheapest)."""
    if not weeks:
        return [Piece(first, last, "day")]
    pieces: list[Piece] = []
    week = week_of(first)
    while week < last:
        nxt = next_week(week)
        a, b = max(first, week), min(last, nxt)
        inside = [Piece(a, b, "day")]
        whole = [Piece(week, nxt, "week")]
        whole += [Piece(s, e, "day", -1) for s, e in ((week, a), (b, nxt)) if s < e]
        pieces += whole if cost(whole) < cost(inside) else inside
        week = nxt
    return _joined(pieces)


def _months(first: datetime | None, last: datetime, weeks: bool) -> list[Piece]:
    """Whole days [first, last) (first None: from the beginning) as calendar months, each
    either whole, or its days in the range, or whole minus its days outside the range (the days
    as weeks of the month and days: `_days`; whichever costs less); consecutive months read
    whole are one piece."""
    pieces: list[Piece] = []
    month = month_of(last) if first is None else month_of(first)
    if first is None:  # every month before last's
        pieces.append(Piece(None, month, "month"))
    while month < last:
        nxt = next_month(month)
        a, b = max(first or month, month), min(last, nxt)
        inside = _days(a, b, weeks)
        outside = [
            *(_days(month, a, weeks) if month < a else []),
            *(_days(b, nxt, weeks) if b < nxt else []),
        ]
        if outside and MONTH_COST + cost(outside) >= cost(inside):
            pieces += inside
        else:
            if pieces and pieces[-1].period == "month" and pieces[-1].end == month:
                pieces[-1] = pieces[-1]._replace(end=nxt)
            else:
                pieces.append(Piece(month, nxt, "month"))
            pieces += _negated(outside)
        month = nxt
    return _joined(pieces)


def split_periods(
    start: datetime | None,
    end: datetime,
    *,
    months: bool = False,
    hours: bool = False,
    weeks: bool = False,
) -> list[Piece]:
    """[start, end) as pieces read from "15m" rows (the ragged edges), whole UTC "day"s and, if
    `months`, calendar "month"s, whole or minus their days outside the range (`_months`;
    start None: from the beginning), and if `weeks` too, the days of a month as its "week"s
    (whole or minus days) where that reads less; if `hours`, the edges' whole "hour"s (the
    hourly rollup is kept per tenant only)."""
    zones = (start and start.tzinfo, end.tzinfo)  # equal instants in two zones: two entries
    return list(_split(start, end, months, hours, weeks, zones))


@functools.lru_cache(maxsize=1024)
def _split(
    start: datetime | None, end: datetime, months: bool, hours: bool, weeks: bool, _zones: object
) -> tuple[Piece, ...]:
    """`split_periods`, kept per range (every `/v1/kpis` read plans its range and the history
    before it; a wallboard asks the same ranges again)."""
    first = None if start is None else _ceil(start, day_of, lambda d: d + DAY)
    last = day_of(end)
    if start is not None and first is not None and first >= last:
        return tuple(_edge(start, end, hours))
    pieces: list[Piece] = []
    if start is not None and first is not None and start < first:
        pieces += _edge(start, first, hours)
    pieces += _months(first, last, weeks) if months else [Piece(first, last, "day")]
    if last < end:
        pieces += _edge(last, end, hours)
    return tuple(pieces)


_WHOLE_DAYS = ("day", "week", "month")


def exact(pieces: list[Piece]) -> list[Piece]:
    """The same range without subtraction: the whole days the day, week and month pieces cover
    net of their signs, as runs of "day" pieces (where a read must know which groups have rows
    in the range, not only their sums); the other pieces (ragged edges) as they are."""
    out = [p for p in pieces if p.period not in _WHOLE_DAYS]
    whole = [p for p in pieces if p.period in _WHOLE_DAYS]
    bounds = sorted({p.end for p in whole} | {p.start for p in whole if p.start is not None})
    run: tuple[datetime | None, datetime] | None = None
    for a, b in zip([None, *bounds], bounds, strict=False):
        net = sum(
            p.sign
            for p in whole
            if (p.start is None or (a is not None and p.start <= a)) and b <= p.end
        )
        if net and run is not None and run[1] == a:
            run = (run[0], b)
        elif net:
            if run is not None:
                out.append(Piece(run[0], run[1], "day"))
            run = (a, b)
    if run is not None:
        out.append(Piece(run[0], run[1], "day"))
    return sorted(out, key=lambda p: (p.start is not None, p.start or p.end))


def wait_second(wait_ms: int) -> int:
    """Per-second wait bin: ceil(seconds), so `wait <= T s` is exactly `bin <= T`."""
    return min(math.ceil(wait_ms / 1000), MAX_WAIT_S + 1)


def call_offered() -> list[Increment]:
    """A call entered a queue."""
    return [Increment("offered", 1)]


def call_answered(wait_ms: int) -> list[Increment]:
    """A call was answered after `wait_ms` in queue."""
    return [
        Increment("ans", 1),
        Increment("ans_wait_ms", wait_ms),
        Increment("ans_wait_s", 1, wait_second(wait_ms)),
        Increment("sk:wait", 1, bin_of(wait_ms)),
    ]


def call_abandoned(wait_ms: int) -> list[Increment]:
    """A caller hung up after `wait_ms` in queue."""
    return [
        Increment("ab", 1),
        Increment("ab_wait_ms", wait_ms),
        Increment("ab_wait_s", 1, wait_second(wait_ms)),
    ]


def call_completed(*, talk_ms: int, hold_ms: int, wrap_ms: int) -> list[Increment]:
    """A call and its wrap-up ended: one handled contact."""
    return [
        Increment("handled", 1),
        Increment("talk_ms", talk_ms),
        Increment("hold_ms", hold_ms),
        Increment("wrap_ms", wrap_ms),
        Increment("sk:handle", 1, bin_of(talk_ms + hold_ms + wrap_ms)),
    ]


def _timed(name: str, ms: int, business_ms: int | None) -> list[Increment]:
    out = [
        Increment(f"{name}_n", 1),
        Increment(f"{name}_ms", ms),
        Increment(f"sk:{name}", 1, bin_of(ms)),
    ]
    if business_ms is not None:
        out += [Increment(f"{name}_bus_n", 1), Increment(f"{name}_bus_ms", business_ms)]
    return out


def first_response(ms: int, business_ms: int | None) -> list[Increment]:
    """First agent reply of a case cycle (a reopen starts a new cycle with its own first reply)."""
    return _timed("frt", ms, business_ms)


def ticket_resolved(ms: int, business_ms: int | None) -> list[Increment]:
    """A case cycle was resolved (durations measured from the cycle's start)."""
    return [Increment("resolved", 1), *_timed("res", ms, business_ms)]


def ticket_opened() -> list[Increment]:
    """A case was opened."""
    return [Increment("opened", 1)]


def ticket_reopened() -> list[Increment]:
    """A resolved case reopened: it is back in the backlog."""
    return [Increment("reopened", 1)]


def ticket_classified(category: str, sentiment: str) -> list[Increment]:
    """A case's contact reason and sentiment."""
    return [
        Increment("classified", 1),
        Increment(f"cat:{category}", 1),
        Increment(f"sent:{sentiment}", 1),
    ]


def message_attributed() -> list[Increment]:
    """An inbound customer message (contact volume per channel)."""
    return [Increment("messages", 1)]


class InvalidScore(ValueError):
    """A survey score outside its kind's scale."""


SCALES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}


def survey(kind: str, score: int) -> list[Increment]:
    """A survey answer: CSAT top-2-box, NPS promoters/detractors, CES sum."""
    low, high = SCALES[kind]
    if not low <= score <= high:
        raise InvalidScore(f"{kind} score {score} outside {low}..{high}")
    if kind == "csat":
        return [Increment("csat_n", 1), Increment("csat_top2", int(score >= 4))]
    if kind == "nps":
        return [
            Increment("nps_n", 1),
            Increment("nps_pro", int(score >= 9)),
            Increment("nps_det", int(score <= 6)),
        ]
    return [Increment("ces_n", 1), Increment("ces_sum", score)]
