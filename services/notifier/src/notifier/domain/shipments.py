"""Forward-only shipment state: duplicates, resent histories, reordering and stale scans never regress it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

STALE_AFTER = timedelta(days=7)
RANK: dict[str, int] = {
    "unknown": 0,
    "pre_transit": 0,
    "in_transit": 1,
    "exception": 1,
    "attempt_failed": 2,
    "out_for_delivery": 2,
    "available_for_pickup": 3,
    "returning": 4,
    "delivered": 5,
    "returned": 5,
    "cancelled": 5,
}
TERMINAL = frozenset({"delivered", "returned", "cancelled"})


@dataclass(frozen=True)
class Scan:
    """One normalised carrier event as the domain needs it."""

    status: str
    occurred_at: datetime
    carrier_code: str | None = None
    is_delay: bool = False
    estimate_to: datetime | None = None

    def key(self) -> str:
        """The semantic dedupe key: the same scan resent has the same key."""
        return f"{self.status}|{self.carrier_code or ''}|{self.occurred_at.isoformat()}"


@dataclass(frozen=True)
class Shipment:
    """What notifier knows of one shipment."""

    shipment_id: str
    carrier: str
    order_id: str | None = None
    status: str = "pre_transit"
    last_scan_at: datetime | None = None
    estimate_to: datetime | None = None
    promised_to: date | None = None
    dispatch_by: datetime | None = None
    dispatched: bool = False

    @property
    def terminal(self) -> bool:
        """Whether nothing can happen to it any more."""
        return self.status in TERMINAL

    @property
    def lane(self) -> str:
        """The stage the next gap is measured in (the feeds carry no origin/destination)."""
        return self.status


@dataclass(frozen=True)
class Applied:
    """The outcome of applying a scan: the new state, whether it counts, and why not."""

    shipment: Shipment
    fresh: bool
    reason: str
    gap: timedelta | None = None
    lane: str = ""  # the stage the gap was spent in (the status before this scan)


def apply(shipment: Shipment, scan: Scan, *, now: datetime) -> Applied:
    """Apply a scan; only a newer, non-stale scan of a live shipment changes anything."""
    if scan.occurred_at < now - STALE_AFTER:
        return Applied(shipment, False, "stale")
    if shipment.terminal:
        return Applied(shipment, False, "terminal")
    last = shipment.last_scan_at
    if last is not None and scan.occurred_at <= last:
        return Applied(shipment, False, "not_newer")
    status = shipment.status
    if scan.status != "unknown" and RANK[scan.status] >= RANK[status]:
        status = scan.status
    moved = replace(
        shipment,
        status=status,
        last_scan_at=scan.occurred_at,
        estimate_to=scan.estimate_to or shipment.estimate_to,
        dispatched=shipment.dispatched or RANK[scan.status] >= 1,
    )
    gap = scan.occurred_at - last if last is not None else None
    return Applied(moved, True, "applied", gap, shipment.lane)
