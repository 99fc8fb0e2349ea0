"""Scenario benchmark: a synthetic day of orders, late by each rule; are customers alerted before they ask?

Run: `.venv/bin/python -m bench.notifier_alerts [orders] [seed]` (also part of `make bench`).
It drives the pure domain (state machine, lateness rules, learned stall thresholds, episodes, policy) with an
event-time simulation and a timer heap, so it measures decisions, not the database or Kafka; then,
when SB_KAFKA_PORT and SB_PG_PORT name a bench broker and database, the same synthetic day goes
through the real path (`bench.notifier_pipeline`: Kafka → notifier's consumer → PostgreSQL).
"""

from __future__ import annotations

import heapq
import itertools
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.domain import delays
from notifier.domain.episodes import Episode, on_signal
from notifier.domain.policy import Customer, Policy, decide
from notifier.domain.shipments import Scan, Shipment, apply

DAY0 = datetime(2026, 11, 2, tzinfo=UTC)
H = timedelta(hours=1)
SEQ = itertools.count()
RULES = ("on_time", "carrier_code", "estimate", "stall", "cutoff")
ZONES = ("Europe/Warsaw", "Europe/Bucharest", "Europe/Moscow", "Europe/London")


@dataclass
class Order:
    """One synthetic order and what happened to it."""

    ship: Shipment
    rule: str
    customer: Customer
    late_at: datetime | None = None
    contact_at: datetime | None = None
    alerts: list[datetime] = field(default_factory=list)
    episode: Episode = field(default_factory=Episode)


def build(i: int, rnd: random.Random) -> tuple[Order, list[tuple[datetime, Scan]]]:
    """An order with its carrier scans (duplicated, sometimes resent) per the rule it follows."""
    placed = DAY0 + timedelta(seconds=rnd.uniform(0, 86_400))
    rule = rnd.choices(RULES, weights=(60, 10, 10, 10, 10))[0]
    ship = Shipment(
        f"s{i}", rnd.choice(("dhl", "ups", "dpd")), order_id=f"o{i}",
        promised_to=(placed + 3 * 24 * H).date(), dispatch_by=placed + 24 * H,
    )  # fmt: skip
    cust = Customer(f"c{i}", language="pl", timezone=rnd.choice(ZONES), handles={"phone": "+48"})
    order = Order(ship, rule, cust)
    t = placed + (rnd.uniform(26, 40) if rule == "cutoff" else rnd.uniform(2, 20)) * H
    order.late_at = placed + 24 * H if rule == "cutoff" else None
    scans = [(t, Scan("in_transit", t))]
    stalled = False
    while t < placed + 60 * H:
        gap = rnd.uniform(4, 16) * H
        if rule == "stall" and not stalled and t > placed + 20 * H:
            order.late_at, stalled, gap = t + 24 * H, True, 96 * H
        t += gap
        code = (
            "DY"
            if rule == "carrier_code" and order.late_at is None and rnd.random() < 0.5
            else None
        )
        est = (
            t + 5 * 24 * H
            if rule == "estimate" and order.late_at is None and rnd.random() < 0.5
            else None
        )
        if (code or est) and order.late_at is None:
            order.late_at = t
        scans.append(
            (t, Scan("in_transit", t, carrier_code=code, is_delay=bool(code), estimate_to=est))
        )
    scans.append((t + 6 * H, Scan("delivered", t + 6 * H)))
    if order.late_at is None and rule != "on_time":
        order.rule = "on_time"
    dupes = [s for s in scans if rnd.random() < 0.2]
    resent = [(t + 12 * H, s) for _, s in scans] if rnd.random() < 0.05 else []
    if order.late_at:
        # customers ask after a while: exponential, mean 36 h, at least one hour
        order.contact_at = order.late_at + H + rnd.expovariate(1 / 36) * H
    return order, scans + dupes + resent


def main(n: int = 10_000, seed: int = 7) -> None:
    """Simulate and print the share alerted first, the median lead, the rate, duplicates."""
    rnd, policy = random.Random(seed), Policy()
    orders: dict[str, Order] = {}
    heap: list[tuple[datetime, int, int, str, Any]] = []
    for i in range(n):
        order, scans = build(i, rnd)
        orders[order.ship.shipment_id] = order
        for at, s in scans:
            heap.append((at, 0, next(SEQ), order.ship.shipment_id, s))
        assert order.ship.dispatch_by is not None
        heap.append((order.ship.dispatch_by, 1, next(SEQ), order.ship.shipment_id, None))
    heapq.heapify(heap)
    gaps: dict[tuple[str, str], delays.GapStats] = {}
    started, events = time.perf_counter(), 0
    while heap:
        now, kind, _, sid, payload = heapq.heappop(heap)
        o = orders[sid]
        if kind == 0:
            events += 1
            _scan(o, payload, now, policy, gaps, heap)
        elif kind == 1 and delays.missed_cutoff(o.ship, now=now):
            _alert(o, delays.MISSED_CUTOFF, now, policy)
        elif kind == 2 and delays.stalled(o.ship, armed_for=payload):
            _alert(o, delays.STALLED, now, policy)
    _report(orders, events, time.perf_counter() - started)


def _scan(
    o: Order, scan: Scan, now: datetime, policy: Policy, gaps: dict[Any, Any], heap: list[Any]
) -> None:
    out = apply(o.ship, scan, now=now)
    if not out.fresh:
        return
    o.ship = out.shipment
    if out.gap is not None:
        key = (o.ship.carrier, out.lane)
        gaps[key] = gaps.get(key, delays.GapStats()).add(out.gap)
    signal = delays.scan_signal(o.ship, scan)
    if signal:
        _alert(o, signal, now, policy)
    stats = gaps.get((o.ship.carrier, o.ship.lane), delays.GapStats())
    threshold = delays.stall_threshold(
        stats, default=policy.stall_default, min_samples=policy.stall_min_samples,
        factor=policy.stall_factor, floor=policy.stall_floor,
    )  # fmt: skip
    due = delays.stall_due(o.ship, threshold)
    if due:
        heapq.heappush(heap, (due, 2, next(SEQ), o.ship.shipment_id, o.ship.last_scan_at))


def _alert(o: Order, reason: str, now: datetime, policy: Policy) -> None:
    o.episode, alert = on_signal(
        o.episode, shipment_id=o.ship.shipment_id, reason=reason,
        estimate=o.ship.estimate_to, margin=policy.estimate_margin,
    )  # fmt: skip
    if alert is None:
        return
    open_case = o.contact_at is not None and o.contact_at <= now
    decision = decide(o.customer, now=now, policy=policy, open_case=open_case, sent=[])
    if decision.status != "suppressed":
        o.alerts.append(decision.not_before or now)


def _report(orders: dict[str, Order], events: int, seconds: float) -> None:
    late = [o for o in orders.values() if o.late_at and o.contact_at]
    first = [o for o in late if o.alerts and o.alerts[0] < o.contact_at]  # type: ignore[operator]
    leads = [(o.contact_at - o.alerts[0]) / H for o in first]  # type: ignore[operator]
    by_rule = Counter(o.rule for o in late)
    first_by_rule = Counter(o.rule for o in first)
    dupes = sum(max(0, len(o.alerts) - 1) for o in orders.values())
    false_alerts = sum(1 for o in orders.values() if o.rule == "on_time" and o.alerts)
    print(f"orders {len(orders)}, late {len(late)} ({dict(by_rule)})")
    print(f"alerted before first contact: {len(first) / max(1, len(late)):.1%}")
    for rule in by_rule:
        print(f"  {rule}: {first_by_rule[rule] / by_rule[rule]:.1%}")
    print(f"median lead time: {statistics.median(leads) if leads else 0:.1f} h")
    print(f"processing rate: {events / seconds:,.0f} shipment events/s ({events} events)")
    print(f"duplicate alerts: {dupes}; alerts for on-time parcels: {false_alerts}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
    if os.environ.get("SB_KAFKA_PORT") and os.environ.get("SB_PG_PORT"):
        import asyncio

        from bench import notifier_pipeline

        asyncio.run(notifier_pipeline.run(seed=args[1] if len(args) > 1 else 7))
