"""Occupancy inputs: online time from presence changes and busy time from handled calls, per interval.

Occupancy = busy / online (handle / (handle + idle)); away is an aux state and counts in neither.
Both are spread over the 15-minute intervals they cover, in integer milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from analytics.domain.components import INTERVAL, Increment, interval_of

MS = timedelta(milliseconds=1)
ONLINE = "online"


def split(start: datetime, end: datetime) -> Iterator[tuple[datetime, int]]:
    """(interval start, milliseconds) of each interval that [start, end) covers."""
    at = start
    while at < end:
        slot = interval_of(at)
        stop = min(end, slot + INTERVAL)
        yield slot, (stop - at) // MS
        at = stop


def busy_spans(ended_at: datetime, handle_ms: int) -> Iterator[tuple[datetime, list[Increment]]]:
    """A handled call keeps its agent busy for `handle_ms` up to the end of wrap-up."""
    for slot, ms in split(ended_at - handle_ms * MS, ended_at):
        yield slot, [Increment("busy_ms", ms)]


def online_change(
    *,
    at: datetime,
    state: str,
    before: str | None,
    until: datetime | None,
) -> list[tuple[datetime, int]]:
    """Online ms to add per interval when a presence change at `at` is inserted into the log.

    `before` is the state of the previous change (None: none, i.e. offline) and `until` the time
    of the next one. Spans after the latest change stay open and are measured on read, so only
    [at, until) changes here; with no next change, the previous span now closes at `at`.
    """
    if until is None:
        return []
    sign = int(state == ONLINE) - int(before == ONLINE)
    return [(slot, sign * ms) for slot, ms in split(at, until)] if sign else []


def closed_previous(
    *, prev_at: datetime, prev_state: str, at: datetime
) -> list[tuple[datetime, int]]:
    """The previous latest change's span, now closed at `at` by a newer change."""
    return list(split(prev_at, at)) if prev_state == ONLINE else []
