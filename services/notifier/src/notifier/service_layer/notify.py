"""Deciding an alert: record the decision and its reason, then schedule, defer or suppress it."""

from __future__ import annotations

import uuid
from typing import Any

from notifier.domain.episodes import Alert
from notifier.domain.policy import Decision, Policy, decide
from notifier.domain.shipments import Shipment
from notifier.service_layer.context import Batch, Ctx
from notifier.service_layer.customers import customer_of
from sbcontracts.events.common import Channel
from sbcontracts.events.notifier import (
    InternalNote,
    NotificationData,
    NotificationScheduled,
    NotificationSuppressed,
)

SEND = "send"


async def create(ctx: Ctx, ship: Shipment, alert: Alert, *, policy: Policy) -> None:
    """Decide an alert once (its key is unique) and record why; in a consumer batch, at its end
    with the batch's other alerts (`settle`)."""
    order = await ctx.repo.order(ship.order_id) if ship.order_id else None
    if ctx.batch is not None:
        ctx.batch.alerts.append((ctx, ship, alert, policy, order))
        return
    await _decide(ctx, ship, alert, policy, order)


async def settle(batch: Batch) -> None:
    """Decide a batch's alerts in order, with what they read (decided keys, owners of the orders'
    contacts, customers, open cases, merges, recent sends) loaded a few statements per tenant.
    The same as deciding each where it was raised: each keeps its shipment and order as they
    were then, and a batch of commerce events changes nothing else they read but the keys it
    decides (the decisions it records are never sends)."""
    by_tenant: dict[str, list[tuple[Ctx, Shipment, Alert, Policy, Any]]] = {}
    for item in batch.alerts:
        by_tenant.setdefault(item[0].tenant, []).append(item)
    for items in by_tenant.values():
        ctx = items[0][0]
        await ctx.repo.preload_people([order for *_, order in items])
        people: set[str] = set()
        for c, ship, _, _, order in items:
            customer_id, _ = await customer_of(c, order, ship.order_id)
            people.update(await c.repo.same_person(customer_id))
        since = min(c.now - policy.cap_window for c, _, _, policy, _ in items)
        await ctx.notes.preload([a.key for _, _, a, _, _ in items], sorted(people), since=since)
    for c, ship, alert, policy, order in batch.alerts:
        await _decide(c, ship, alert, policy, order)
    batch.alerts.clear()


async def _decide(ctx: Ctx, ship: Shipment, alert: Alert, policy: Policy, order: Any) -> None:
    if await ctx.notes.decided(alert.key):
        return
    customer_id, customer = await customer_of(ctx, order, ship.order_id)
    ticket = await ctx.repo.open_case(ship.order_id, customer_id)
    person = await ctx.repo.same_person(customer_id)
    sent = await ctx.notes.sent_times(person, since=ctx.now - policy.cap_window)
    decision = decide(customer, now=ctx.now, policy=policy, open_case=bool(ticket), sent=sent)
    nid = str(uuid.uuid4())
    language = (customer.language if customer else None) or policy.default_language
    note = internal_note(ship, alert) if ticket else None
    status = "scheduled" if decision.status == SEND else decision.status
    ctx.notes.add_later(
        id=nid,
        alert_key=alert.key,
        customer_id=customer_id,
        order_id=ship.order_id,
        shipment_id=ship.shipment_id,
        episode=alert.episode,
        delay_reason=alert.reason,
        estimate=alert.estimate,
        status=status,
        reason=decision.reason,
        channel=decision.channels[0] if decision.channels else None,
        channels_left=list(decision.channels),
        language=language,
        not_before=decision.not_before or (None if status == "suppressed" else ctx.now),
        attempts=0,
        note=note,
        history=[{"at": ctx.now.isoformat(), "status": status, "reason": decision.reason}],
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    fields = common(nid, customer_id, ship, alert, decision)
    await announce(ctx, nid, decision, fields, ticket, note=note, language=language)


def common(
    nid: str, customer_id: str, ship: Shipment, alert: Alert, decision: Decision
) -> dict[str, Any]:
    """The fields every notification event carries."""
    return {
        "notification_id": nid,
        "customer_id": customer_id,
        "order_id": ship.order_id,
        "shipment_id": ship.shipment_id,
        "episode": alert.episode,
        "delay_reason": alert.reason,
        "reason": decision.reason,
        "channel": Channel(decision.channels[0]) if decision.channels else None,
    }


async def announce(
    ctx: Ctx,
    nid: str,
    decision: Decision,
    fields: dict[str, Any],
    ticket: str | None,
    *,
    note: str | None,
    language: str | None,
) -> None:
    """Emit the decision (with the note and language just recorded) and arm the send timer (now,
    or when the deferral ends)."""
    data: NotificationData
    if decision.status == "suppressed":
        internal = (
            InternalNote(ticket_id=ticket, text=note or "delayed shipment") if ticket else None
        )
        data = NotificationSuppressed(**fields, occurred_at=ctx.now, note=internal)
    else:
        due = decision.not_before or ctx.now
        data = NotificationScheduled(
            **fields, occurred_at=ctx.now, not_before=due, language=language
        )
        await ctx.notes.arm(SEND, nid, due_at=due)
    await ctx.emit(data, key=fields["customer_id"])


def internal_note(ship: Shipment, alert: Alert) -> str:
    """The note the open case gets instead of a message to the customer."""
    estimate = alert.estimate.date().isoformat() if alert.estimate else "unknown"
    return (
        f"Proactive delay alert not sent to the customer because this case is open: shipment "
        f"{ship.shipment_id} ({ship.carrier}) of order {ship.order_id} is late "
        f"({alert.reason}); current estimate {estimate}, status {ship.status}."
    )
