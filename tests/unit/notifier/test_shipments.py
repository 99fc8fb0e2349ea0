"""Forward-only shipment state and delay detection rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TypedDict, Unpack

from hypothesis import given
from hypothesis import strategies as st

from notifier.domain.delays import (
    CARRIER_DELAY,
    ESTIMATE_LATE,
    GapStats,
    missed_cutoff,
    scan_signal,
    stall_threshold,
    stalled,
)
from notifier.domain.shipments import RANK, Scan, Shipment, apply

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


class ShipmentFields(TypedDict, total=False):
    status: str
    last_scan_at: datetime | None
    estimate_to: datetime | None
    promised_to: date | None
    dispatch_by: datetime | None


def ship(**kw: Unpack[ShipmentFields]) -> Shipment:
    return Shipment("s-1", "dhl", order_id="o-1", **kw)


def test_older_scan_after_newer_never_moves_state_back() -> None:
    s = apply(ship(), Scan("out_for_delivery", NOW - timedelta(hours=1)), now=NOW).shipment
    late = apply(s, Scan("in_transit", NOW - timedelta(hours=5)), now=NOW)
    assert not late.fresh and late.reason == "not_newer"
    assert late.shipment.status == "out_for_delivery"


def test_duplicate_scan_is_not_fresh() -> None:
    scan = Scan("in_transit", NOW - timedelta(hours=1))
    s = apply(ship(), scan, now=NOW).shipment
    assert apply(s, scan, now=NOW).fresh is False


def test_stale_scan_older_than_seven_days_is_ignored() -> None:
    out = apply(ship(), Scan("exception", NOW - timedelta(days=8), is_delay=True), now=NOW)
    assert (out.fresh, out.reason, out.shipment.last_scan_at) == (False, "stale", None)


def test_delivered_is_terminal() -> None:
    s = apply(ship(), Scan("delivered", NOW - timedelta(hours=2)), now=NOW).shipment
    assert apply(s, Scan("exception", NOW - timedelta(hours=1)), now=NOW).reason == "terminal"


statuses = st.sampled_from(sorted(RANK))
scans = st.lists(
    st.builds(
        Scan,
        status=statuses,
        occurred_at=st.integers(0, 300).map(lambda h: NOW - timedelta(hours=h)),
    ),
    max_size=25,
)


@given(scans)
def test_any_order_of_a_history_ends_no_earlier_than_its_newest_scan(
    history: list[Scan],
) -> None:
    s = ship()
    for scan in [*history, *history]:  # a resent history on top
        before = s
        s = apply(s, scan, now=NOW).shipment
        assert RANK[s.status] >= RANK[before.status]
        assert before.last_scan_at is None or (
            s.last_scan_at is not None and s.last_scan_at >= before.last_scan_at
        )


def test_carrier_delay_code_is_late() -> None:
    scan = Scan("in_transit", NOW, carrier_code="wx")
    assert scan_signal(ship(), scan) == CARRIER_DELAY


def test_estimate_after_promise_is_late_and_within_is_not() -> None:
    late = ship(promised_to=date(2026, 11, 21), estimate_to=NOW + timedelta(days=3))
    fine = ship(promised_to=date(2026, 11, 21), estimate_to=NOW)
    assert scan_signal(late, Scan("in_transit", NOW)) == ESTIMATE_LATE
    assert scan_signal(fine, Scan("in_transit", NOW)) is None


def test_stall_holds_only_if_no_scan_since_the_timer_was_armed() -> None:
    s = ship(last_scan_at=NOW - timedelta(days=3), status="in_transit")
    assert stalled(s, armed_for=NOW - timedelta(days=3))
    assert not stalled(s, armed_for=NOW - timedelta(days=4))


def test_missed_cutoff_only_without_movement() -> None:
    s = ship(dispatch_by=NOW - timedelta(hours=1))
    assert missed_cutoff(s, now=NOW)
    assert not missed_cutoff(apply(s, Scan("in_transit", NOW), now=NOW).shipment, now=NOW)
    assert not missed_cutoff(ship(dispatch_by=NOW + timedelta(hours=1)), now=NOW)


def test_stall_threshold_learns_p95_after_enough_samples() -> None:
    stats = GapStats()
    default = timedelta(hours=48)
    for _ in range(19):
        stats = stats.add(timedelta(hours=5))
    assert stall_threshold(stats, default=default, min_samples=30, factor=1.5) == default
    for _ in range(20):
        stats = stats.add(timedelta(hours=7))
    assert stall_threshold(stats, default=default, min_samples=30, factor=1.5) == timedelta(
        hours=12
    )
    floor = timedelta(hours=24)
    learned = stall_threshold(stats, default=default, min_samples=30, factor=1.5, floor=floor)
    assert learned == floor
