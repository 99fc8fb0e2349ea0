"""Components that depend on more than one event: a case's latest classification, aging backlog,
first contact resolution and proactive-alert outcomes.

Each derived entity (a case, a case cycle, an alert) has facts merged from its events in any
order; its contribution is a pure function of the facts of its customer. The service layer
stores the contribution it applied and adds only the difference when the facts change, so the
buckets stay additive, late events correct their own intervals, and nothing counts twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from analytics.domain.components import Bucket, interval_of

Contribution = dict[tuple[Bucket, str, int], int]

# Aging backlog: `age_gt` bin k counts open cycles older than AGES[k] (strictly).
AGES = (timedelta(0), timedelta(hours=1), timedelta(hours=4), timedelta(days=1), timedelta(days=3))
FCR_HORIZON = timedelta(days=30)  # repeats later than this are no repeat for any window offered
HOUR = timedelta(hours=1)


@dataclass
class Dims:
    """Where an event happened (queue, channel, agent; '' when unknown)."""

    queue: str = ""
    channel: str = ""
    agent: str = ""


@dataclass
class Case:
    """A case: its customer, order, opening and classifications (the latest wins)."""

    ticket: str
    customer: str
    order: str | None = None
    opened_at: datetime | None = None
    first_classified_at: datetime | None = None
    first_classified_dims: Dims = field(default_factory=Dims)
    classified_at: datetime | None = None
    category: str | None = None
    sentiment: str | None = None


@dataclass
class Cycle:
    """A case cycle: started by the opening (cycle 1) or a reopen, ended by a resolution."""

    ticket: str
    cycle: int
    started_at: datetime | None = None
    start_dims: Dims = field(default_factory=Dims)
    resolved_at: datetime | None = None
    resolve_dims: Dims = field(default_factory=Dims)


@dataclass
class Alert:
    """A proactive delay notification and what became of it (earliest time of each step)."""

    notification: str
    customer: str
    order: str | None = None
    channel: str = ""
    first_at: datetime | None = None
    scheduled_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    suppressed: bool = False


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two optional times."""
    return b if a is None else a if b is None else min(a, b)


def _add(out: Contribution, bucket: Bucket, name: str, value: int, bin_: int = 0) -> None:
    key = (bucket, name, bin_)
    out[key] = out.get(key, 0) + value


def _bucket(tenant: str, at: datetime, dims: Dims) -> Bucket:
    return Bucket(tenant, interval_of(at), dims.queue, dims.channel, dims.agent)


def classification(tenant: str, case: Case) -> Contribution:
    """One classified case in the interval of its first classification, under its latest reason."""
    out: Contribution = {}
    if case.first_classified_at is None or case.category is None:
        return out
    b = _bucket(tenant, case.first_classified_at, case.first_classified_dims)
    _add(out, b, "classified", 1)
    _add(out, b, f"cat:{case.category}", 1)
    _add(out, b, f"sent:{case.sentiment}", 1)
    return out


def aging(tenant: str, cycle: Cycle) -> Contribution:
    """+1 to `age_gt` k when the open cycle passes age AGES[k], -1 when it is resolved after that.

    Summed over intervals before a snapshot s, bin k is the number of cycles started before
    s - AGES[k] and not resolved before s: exact, because snapshots and ages are whole intervals.
    """
    out: Contribution = {}
    if cycle.started_at is None:
        return out
    for k, age in enumerate(AGES):
        aged = cycle.started_at + age
        _add(out, _bucket(tenant, aged, cycle.start_dims), "age_gt", 1, k)
        if cycle.resolved_at is not None:
            gone = max(cycle.resolved_at, aged)
            _add(out, _bucket(tenant, gone, cycle.start_dims), "age_gt", -1, k)
    return {k: v for k, v in out.items() if v}


def repeat_gap(
    resolved: Cycle, case: Case, cases: Iterable[Case], cycles: Iterable[Cycle]
) -> timedelta | None:
    """Time from a resolution to the customer's next contact on the same issue, if any.

    Same issue: a later cycle of the same case (a reopen), or a case of the same customer
    with the same category opened at or after the resolution.
    """
    assert resolved.resolved_at is not None
    at = resolved.resolved_at
    times = [
        c.started_at
        for c in cycles
        if c.ticket == resolved.ticket and c.cycle > resolved.cycle and c.started_at is not None
    ]
    if case.category is not None:
        times += [
            o.opened_at
            for o in cases
            if o.ticket != case.ticket and o.category == case.category and o.opened_at is not None
        ]
    gaps = [t - at for t in times if t >= at]
    return min(gaps) if gaps else None


def fcr(
    tenant: str, resolved: Cycle, case: Case, cases: Iterable[Case], cycles: Iterable[Cycle]
) -> Contribution:
    """A resolution counts in `fcr_n`; a repeat within 30 days in `fcr_rep_h` at ⌈gap / 1 h⌉."""
    out: Contribution = {}
    if resolved.resolved_at is None:
        return out
    b = _bucket(tenant, resolved.resolved_at, resolved.resolve_dims)
    _add(out, b, "fcr_n", 1)
    gap = repeat_gap(resolved, case, cases, cycles)
    if gap is not None and gap <= FCR_HORIZON:
        _add(out, b, "fcr_rep_h", 1, math.ceil(gap / HOUR))
    return out


def first_contact(alert: Alert, cases: Iterable[Case], cycles: Iterable[Cycle]) -> datetime | None:
    """The customer's first contact about the alert's order since the delay was decided.

    A contact is a case opened, or reopened, that names this order or names no order.
    """
    start = alert.scheduled_at or alert.first_at
    if start is None:
        return None
    about = {c.ticket for c in cases if c.order is None or c.order == alert.order}
    times = [c.opened_at for c in cases if c.ticket in about and c.opened_at is not None]
    times += [
        c.started_at
        for c in cycles
        if c.ticket in about and c.cycle > 1 and c.started_at is not None
    ]
    later = [t for t in times if t >= start]
    return min(later) if later else None


def alert(tenant: str, a: Alert, cases: Iterable[Case], cycles: Iterable[Cycle]) -> Contribution:
    """Alert figures in the interval the delay was decided: sent, delivered, suppressed, and for
    sent alerts whether delivery came before the customer's first contact, with the lead time."""
    out: Contribution = {}
    start = a.scheduled_at or a.first_at
    if start is None:
        return out
    b = Bucket(tenant, interval_of(start), channel=a.channel)
    if a.suppressed:
        _add(out, b, "alert_suppressed", 1)
    if a.sent_at is None:
        return out
    _add(out, b, "alert_sent", 1)
    contact = first_contact(a, cases, cycles)
    if a.delivered_at is not None:
        _add(out, b, "alert_delivered", 1)
    if a.delivered_at is not None and (contact is None or a.delivered_at < contact):
        _add(out, b, "alert_ahead", 1)
        if contact is not None:
            _add(out, b, "alert_lead_n", 1)
            _add(out, b, "alert_lead_ms", (contact - a.delivered_at) // timedelta(milliseconds=1))
    elif contact is not None:
        _add(out, b, "alert_behind", 1)
    return out


@dataclass
class Customer:
    """Every case, cycle and alert of one customer (what their derived components depend on)."""

    cases: dict[str, Case] = field(default_factory=dict)
    cycles: dict[tuple[str, int], Cycle] = field(default_factory=dict)
    alerts: dict[str, Alert] = field(default_factory=dict)


def contributions(tenant: str, who: Customer) -> dict[str, Contribution]:
    """Each derived entity's contribution, keyed by entity key (case:, cycle:, alert:)."""
    cases, cycles = list(who.cases.values()), list(who.cycles.values())
    out: dict[str, Contribution] = {}
    for case in cases:
        out[f"case:{case.ticket}"] = classification(tenant, case)
    for (ticket, n), cycle in who.cycles.items():
        mine = aging(tenant, cycle)
        case = who.cases.get(ticket) or Case(ticket, "")
        for key, v in fcr(tenant, cycle, case, cases, cycles).items():
            mine[key] = mine.get(key, 0) + v
        out[f"cycle:{ticket}:{n}"] = mine
    for a in who.alerts.values():
        out[f"alert:{a.notification}"] = alert(tenant, a, cases, cycles)
    return out


def difference(
    new: Mapping[tuple[Bucket, str, int], int], old: Mapping[tuple[Bucket, str, int], int]
) -> Contribution:
    """What to add to the buckets to go from `old` to `new`."""
    out = {k: new.get(k, 0) - old.get(k, 0) for k in set(new) | set(old)}
    return {k: v for k, v in out.items() if v}
