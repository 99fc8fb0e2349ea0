"""Brute-force KPIs from raw events for the oracle: written from the definitions, sharing nothing
with the service (no buckets, no components), so the two can only agree by being right. Who a
customer is comes from crm's merges as they stand at the end (`identity`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sbcontracts.envelope import CloudEvent, EventData
from sbcontracts.events.crm import CustomerMerged, CustomerUnmerged
from sbcontracts.events.ingest import CallCompleted
from sbcontracts.events.notifier import (
    NotificationDelivered,
    NotificationScheduled,
    NotificationSent,
    NotificationSuppressed,
)
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    Sentiment,
    TicketClassified,
    TicketOpened,
    TicketReopened,
    TicketResolved,
)

Events = list[CloudEvent[Any]]
AGE_EDGES = {
    "under_1h": (timedelta(0), timedelta(hours=1)),
    "1h_4h": (timedelta(hours=1), timedelta(hours=4)),
    "4h_24h": (timedelta(hours=4), timedelta(days=1)),
    "1d_3d": (timedelta(days=1), timedelta(days=3)),
    "over_3d": (timedelta(days=3), timedelta.max),
}
ALERT_STEPS: dict[type[EventData], str] = {
    NotificationScheduled: "scheduled",
    NotificationSent: "sent",
    NotificationDelivered: "delivered",
    NotificationSuppressed: "suppressed",
}


def _of(events: Events, cls: type[Any]) -> list[Any]:
    return [e.data for e in events if isinstance(e.data, cls)]


def latest_class(events: Events) -> dict[str, TicketClassified]:
    """Each case's latest classification by event time."""
    out: dict[str, TicketClassified] = {}
    for d in sorted(_of(events, TicketClassified), key=lambda d: d.occurred_at):
        out[d.ticket_id] = d
    return out


def first_class_at(events: Events) -> dict[str, datetime]:
    """Each case's first classification time."""
    out: dict[str, datetime] = {}
    for d in _of(events, TicketClassified):
        out[d.ticket_id] = min(out.get(d.ticket_id, d.occurred_at), d.occurred_at)
    return out


def sentiment_share(events: Events, sentiment: Sentiment) -> float | None:
    """Share of classified cases whose latest sentiment is `sentiment`."""
    latest = latest_class(events)
    return sum(d.sentiment == sentiment for d in latest.values()) / len(latest) if latest else None


def categories_by_hour(events: Events, start: datetime) -> dict[str, dict[str, int]]:
    """Cases per latest category, in the hour of their first classification."""
    first, latest = first_class_at(events), latest_class(events)
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for ticket, d in latest.items():
        hour = start + (first[ticket] - start) // timedelta(hours=1) * timedelta(hours=1)
        out[hour.isoformat()][d.category.value] += 1
    return {h: dict(c) for h, c in out.items()}


def _cycle_starts(events: Events) -> dict[tuple[str, int], datetime]:
    starts: dict[tuple[str, int], datetime] = {}
    for d in _of(events, TicketOpened) + _of(events, TicketReopened):
        key = (d.ticket_id, 1 if isinstance(d, TicketOpened) else d.cycle)
        starts[key] = min(starts.get(key, d.occurred_at), d.occurred_at)
    return starts


def _resolutions(events: Events) -> dict[tuple[str, int], datetime]:
    out: dict[tuple[str, int], datetime] = {}
    for d in _of(events, TicketResolved):
        key = (d.ticket_id, d.cycle)
        out[key] = min(out.get(key, d.occurred_at), d.occurred_at)
    return out


def aging(events: Events, snapshot: datetime) -> dict[str, int]:
    """Open cycles at `snapshot` per age bucket (age in (low, high])."""
    resolved = _resolutions(events)
    counts = dict.fromkeys(AGE_EDGES, 0)
    for key, started in _cycle_starts(events).items():
        end = resolved.get(key)
        if not (started < snapshot and (end is None or end >= snapshot)):
            continue
        age = snapshot - started
        for name, (low, high) in AGE_EDGES.items():
            if low < age <= high:
                counts[name] += 1
    return counts


def identity(events: Events) -> dict[str, str]:
    """Each merged-away customer's survivor at the end: the merges never undone, followed to the
    end of their chains."""
    undone = {d.merge_id for d in _of(events, CustomerUnmerged)}
    into = {
        d.merged_id: d.survivor_id for d in _of(events, CustomerMerged) if d.merge_id not in undone
    }
    out = {}
    for who in into:
        root = who
        while root in into:
            root = into[root]
        out[who] = root
    return out


def _customers(events: Events) -> dict[str, str]:
    """Each case's customer: who opened it, as crm's merges leave them at the end (routing may
    publish its later events under the id it re-keyed the case to)."""
    final = identity(events)
    return {d.ticket_id: final.get(d.customer_id, d.customer_id) for d in _of(events, TicketOpened)}


def fcr(events: Events, *, days: int, now: datetime | None, interval: timedelta) -> float | None:
    """Resolutions not followed by a repeat (a reopen of the case, or a new case of the same
    customer and category) within `days`; with `now`, only those whose window closed by then
    (counted at the end of their 15-minute interval)."""
    owner, cats = _customers(events), {t: d.category for t, d in latest_class(events).items()}
    opened = {t: at for (t, c), at in _cycle_starts(events).items() if c == 1}
    reopens = [(t, c, at) for (t, c), at in _cycle_starts(events).items() if c > 1]
    n = good = 0
    for (ticket, cycle), at in _resolutions(events).items():
        slot_end = at - timedelta(seconds=at.timestamp() % interval.total_seconds()) + interval
        if now is not None and slot_end + timedelta(days=days) > now:
            continue
        later = [r for t, c, r in reopens if t == ticket and c > cycle and r >= at]
        later += [
            o
            for t, o in opened.items()
            if t != ticket
            and owner[t] == owner[ticket]
            and cats.get(ticket) is not None
            and cats.get(t) == cats.get(ticket)
            and o >= at
        ]
        n += 1
        good += not any(r - at <= timedelta(days=days) for r in later)
    return good / n if n else None


def occupancy(
    events: Events, start: datetime, end: datetime, agent: str | None = None
) -> float | None:
    """Busy ms of handled calls / online ms from presence changes, both clipped to [start, end)."""

    def overlap(a: datetime, b: datetime) -> float:
        return max(0.0, (min(b, end) - max(a, start)).total_seconds())

    changes: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for d in _of(events, AgentPresenceChanged):
        changes[d.agent_id].append((d.occurred_at, d.presence))
    online = 0.0
    for who, log in changes.items():
        if agent is not None and who != agent:
            continue
        log.sort()
        stops = [at for at, _ in log[1:]] + [end]  # the latest span is open: it runs on
        online += sum(
            overlap(at, stop) for (at, p), stop in zip(log, stops, strict=True) if p == "online"
        )
    busy = sum(
        overlap(
            d.occurred_at - timedelta(milliseconds=d.talk_ms + d.hold_ms + d.wrap_ms), d.occurred_at
        )
        for d in _of(events, CallCompleted)
        if d.agent_id and (agent is None or d.agent_id == agent)
    )
    return busy / online if online else None


def alerts(events: Events) -> dict[str, float | None]:
    """Alerts sent/delivered/suppressed; for sent ones whether delivery preceded the customer's
    first contact about the order (a case opened or reopened naming it, or naming no order)."""
    by: dict[str, dict[str, Any]] = defaultdict(dict)
    final = identity(events)
    for e in events:
        d = e.data
        step = ALERT_STEPS.get(type(d))
        if step:
            a = by[d.notification_id]
            a.update(customer=final.get(d.customer_id, d.customer_id), order=d.order_id)
            a[step] = min(a.get(step, d.occurred_at), d.occurred_at)
    owner = _customers(events)
    order = {d.ticket_id: d.order_id for d in _of(events, TicketOpened)}
    contacts = [(owner[t], order.get(t), at) for (t, _), at in _cycle_starts(events).items()]
    sent = [a for a in by.values() if "sent" in a]
    ahead = behind = 0
    leads: list[float] = []
    for a in sent:
        times = [
            at
            for who, o, at in contacts
            if who == a["customer"] and o in (None, a["order"]) and at >= a["scheduled"]
        ]
        first = min(times) if times else None
        got = a.get("delivered")
        if got is not None and (first is None or got < first):
            ahead += 1
            if first is not None:
                leads.append((first - got).total_seconds())
        elif first is not None:
            behind += 1
    return {
        "alerts_sent": len(sent),
        "alerts_delivered": sum("delivered" in a for a in sent),
        "alerts_suppressed": sum("suppressed" in a for a in by.values()),
        "alerts_ahead_of_contact": ahead,
        "alerts_behind_contact": behind,
        "alert_ahead_share": ahead / len(sent) if sent else None,
        "alert_lead_time": sum(leads) / len(leads) if leads else None,
    }
