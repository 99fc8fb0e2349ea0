"""Delay detection: carrier codes, estimates past the promise, stalls, missed dispatch cut-offs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.domain.shipments import Scan, Shipment

# Carrier delay/exception codes (UPS, FedEx, DHL, X12 4010 status reasons).
DELAY_CODES: dict[str, frozenset[str]] = {
    "ups": frozenset({"DY", "DE", "SD"}),
    "fedex": frozenset({"DY", "DD", "PY"}),
    "dhl": frozenset({"AD", "DY", "HI", "HO", "HW", "RD", "SM", "WX"}),
    "x12": frozenset({"AW", "AY", "AO"}),
}
CARRIER_DELAY = "carrier_delay_code"
ESTIMATE_LATE = "estimate_after_promise"
STALLED = "stalled"
MISSED_CUTOFF = "missed_dispatch_cutoff"


def is_delay_code(carrier: str, code: str | None) -> bool:
    """Whether a raw carrier code signals a delay (X12 codes count for every carrier)."""
    if not code:
        return False
    code = code.upper()
    return code in DELAY_CODES.get(carrier.lower(), frozenset()) or code in DELAY_CODES["x12"]


def scan_signal(shipment: Shipment, scan: Scan) -> str | None:
    """The lateness a fresh scan reveals, if any (shipment is the state after the scan)."""
    if scan.is_delay or scan.status == "exception":
        return CARRIER_DELAY
    if is_delay_code(shipment.carrier, scan.carrier_code):
        return CARRIER_DELAY
    if estimate_late(shipment):
        return ESTIMATE_LATE
    return None


def estimate_late(shipment: Shipment) -> bool:
    """Whether the latest estimate ends after the promised date."""
    if shipment.estimate_to is None or shipment.promised_to is None:
        return False
    return shipment.estimate_to.date() > shipment.promised_to


def stall_due(shipment: Shipment, threshold: timedelta) -> datetime | None:
    """When the shipment counts as stalled if no scan arrives before then."""
    if shipment.terminal or shipment.last_scan_at is None:
        return None
    return shipment.last_scan_at + threshold


def stalled(shipment: Shipment, *, armed_for: datetime | None) -> bool:
    """Whether a stall timer armed at scan time `armed_for` still holds (no scan came since)."""
    if shipment.terminal or shipment.last_scan_at is None:
        return False
    return shipment.last_scan_at == armed_for


def missed_cutoff(shipment: Shipment, *, now: datetime) -> bool:
    """Whether the dispatch cut-off passed without any carrier movement."""
    if shipment.dispatch_by is None or shipment.terminal or shipment.dispatched:
        return False
    return now >= shipment.dispatch_by


@dataclass(frozen=True)
class GapStats:
    """Observed scan gaps of one carrier+lane as a fixed-bucket histogram (a running p95)."""

    counts: tuple[int, ...] = ()

    BOUNDS_H = (1, 2, 4, 6, 8, 12, 16, 24, 36, 48, 72, 96, 120, 168, 240, 336)

    def add(self, gap: timedelta) -> GapStats:
        """The stats with one more observed gap."""
        counts = list(self.counts or (0,) * len(self.BOUNDS_H))
        hours = gap.total_seconds() / 3600
        idx = next((i for i, b in enumerate(self.BOUNDS_H) if hours <= b), len(counts) - 1)
        counts[idx] += 1
        return GapStats(tuple(counts))

    @property
    def samples(self) -> int:
        """How many gaps were observed."""
        return sum(self.counts)

    def p95(self) -> timedelta | None:
        """The 95th percentile gap (bucket upper bound), or None without data."""
        total = self.samples
        if not total:
            return None
        seen = 0
        for bound, count in zip(self.BOUNDS_H, self.counts, strict=True):
            seen += count
            if seen >= 0.95 * total:
                return timedelta(hours=bound)
        return timedelta(hours=self.BOUNDS_H[-1])


def stall_threshold(
    stats: GapStats,
    *,
    default: timedelta,
    min_samples: int,
    factor: float,
    floor: timedelta = timedelta(0),
) -> timedelta:
    """The stall threshold: learned p95 times the factor (never under the floor), else the default.

    The floor matters at cold start: the first gaps to complete are the short ones, so an early
    p95 is biased low and would call normal parcels stalled.
    """
    p95 = stats.p95()
    if p95 is None or stats.samples < min_samples:
        return default
    return max(floor, p95 * factor)
