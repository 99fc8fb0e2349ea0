"""Business-hours arithmetic and SLA deadlines (DST, holidays, weekends; properties via hypothesis)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.domain.calendar import BusinessHours, add_business, business_between, is_open
from routing.domain.sla import deadline

NINE_TO_FIVE = tuple((time(9), time(17)) for _ in range(1))
WARSAW = BusinessHours(
    "Europe/Warsaw",
    {d: NINE_TO_FIVE for d in range(5)},
    frozenset({date(2026, 12, 25)}),
)


def test_open_only_on_weekdays_within_local_hours() -> None:
    assert is_open(WARSAW, datetime(2026, 11, 20, 8, 30, tzinfo=UTC))  # Fri 09:30 Warsaw
    assert not is_open(WARSAW, datetime(2026, 11, 20, 16, 30, tzinfo=UTC))  # Fri 17:30
    assert not is_open(WARSAW, datetime(2026, 11, 21, 10, 0, tzinfo=UTC))  # Saturday
    assert not is_open(WARSAW, datetime(2026, 12, 25, 10, 0, tzinfo=UTC))  # holiday


def test_friday_evening_target_rolls_over_the_weekend() -> None:
    start = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # Fri 16:00 Warsaw, one hour left
    due = add_business(WARSAW, start, timedelta(hours=2))
    assert due == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Mon 10:00 Warsaw


def test_dst_change_keeps_local_opening_time() -> None:
    start = datetime(2026, 3, 27, 15, 59, tzinfo=UTC)  # Fri 16:59 CET; Sunday switches to CEST
    due = add_business(WARSAW, start, timedelta(minutes=2))
    assert due == datetime(2026, 3, 30, 7, 1, tzinfo=UTC)  # Mon 09:01 CEST


def test_sla_deadline_warns_before_breach_and_counts_used_time() -> None:
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    d = deadline("first_response", 3600, start=start, hours=WARSAW)
    assert (
        d is not None
        and d.warn_at == start + timedelta(minutes=48)
        and d.due_at == start + timedelta(hours=1)
    )
    paused = deadline("first_response", 3600, start=start, hours=WARSAW, used=timedelta(minutes=30))
    assert paused is not None and paused.due_at == start + timedelta(minutes=30)


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC)),
    minutes=st.integers(0, 60 * 24 * 10),
)
def test_business_time_added_is_business_time_measured(start: datetime, minutes: int) -> None:
    due = add_business(WARSAW, start, timedelta(minutes=minutes))
    assert due >= start
    assert business_between(WARSAW, start, due) == timedelta(minutes=minutes)
    if minutes:
        assert is_open(WARSAW, due - timedelta(microseconds=1))
