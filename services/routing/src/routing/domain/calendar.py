"""Business-hours calendars (IANA time zone, weekly hours, holidays) and business-time arithmetic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_HORIZON_DAYS = 800


@dataclass(frozen=True)
class BusinessHours:
    """Open spans per weekday (0 = Monday) in local time, closed on holidays."""

    tz: str = "UTC"
    weekly: dict[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    def spans_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open spans of a local date, as aware UTC datetimes."""
        if day in self.holidays:
            return []
        zone = ZoneInfo(self.tz)
        spans = sorted(self.weekly.get(day.weekday(), ()))
        return [
            (datetime.combine(day, a, zone).astimezone(UTC), _end(day, b, zone)) for a, b in spans
        ]


def _end(day: date, end: time, zone: ZoneInfo) -> datetime:
    """00:00 as an end means midnight at the end of the day."""
    if end == time(0):
        return datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return datetime.combine(day, end, zone).astimezone(UTC)


def _spans_from(hours: BusinessHours, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    day = start.astimezone(ZoneInfo(hours.tz)).date() - timedelta(days=1)
    for offset in range(_HORIZON_DAYS):
        for a, b in hours.spans_on(day + timedelta(days=offset)):
            if b > start:
                yield max(a, start), b


def is_open(hours: BusinessHours | None, at: datetime) -> bool:
    """Whether the calendar is open at `at` (no calendar: always open)."""
    if hours is None:
        return True
    first = next(_spans_from(hours, at), None)
    return first is not None and first[0] <= at


def add_business(hours: BusinessHours | None, start: datetime, duration: timedelta) -> datetime:
    """The instant `duration` of open time after `start`."""
    if hours is None:
        return start + duration
    left = duration
    for a, b in _spans_from(hours, start):
        if b - a >= left:
            return a + left
        left -= b - a
    raise ValueError("calendar has no open time within the horizon")


def business_between(hours: BusinessHours | None, start: datetime, end: datetime) -> timedelta:
    """Open time between two instants (zero if end ≤ start)."""
    if end <= start:
        return timedelta(0)
    if hours is None:
        return end - start
    total = timedelta(0)
    for a, b in _spans_from(hours, start):
        if a >= end:
            break
        total += min(b, end) - a
    return total
