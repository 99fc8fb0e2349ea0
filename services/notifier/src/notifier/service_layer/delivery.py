"""Sending a scheduled alert: re-check the policy, send through a provider or an adapter, fall back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from notifier.domain.policy import CHANNEL_HANDLE, Decision, decide
from notifier.domain.templates import MessageTemplate, pick, render
from notifier.service_layer.context import Ctx
from notifier.service_layer.customers import for_order
from notifier.service_layer.ports import Accepted, Outgoing, Sender, SendFailed
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.ingest import DeliveryReceiptReceived, ReceiptStatus
from sbcontracts.events.notifier import (
    InternalNote,
    NotificationDelivered,
    NotificationFailed,
    NotificationSent,
    NotificationSuppressed,
)
from sbcontracts.events.outbound import OutboundMessage

SEND, RECEIPT = "send", "receipt"
PENDING = ("scheduled", "deferred")
OUTAGE_ROUNDS = 6
OUTAGE_BACKOFF = timedelta(minutes=5)


def fields(row: Any, *, reason: str, channel: str | None) -> dict[str, Any]:
    """The common event fields of a stored notification."""
    return {
        "notification_id": row.id,
        "customer_id": row.customer_id,
        "order_id": row.order_id,
        "shipment_id": row.shipment_id,
        "episode": row.episode,
        "delay_reason": row.delay_reason,
        "reason": reason,
        "channel": Channel(channel) if channel else None,
        "occurred_at": None,
    }


async def fire_send(ctx: Ctx, nid: str, *, sender: Sender) -> None:
    """The send timer is due: decide again (cases, STOP, quiet hours, cap) and send on the next channel."""
    row = await ctx.notes.get(nid, lock=True)
    if row is None or row.status not in PENDING:
        return
    policy = await ctx.policy()
    _, customer = await for_order(ctx, row.order_id)
    ticket = await ctx.repo.open_case(row.order_id, row.customer_id)
    person = await ctx.repo.same_person(row.customer_id)
    sent = await ctx.notes.sent_times(person, since=ctx.now - policy.cap_window)
    decision = decide(customer, now=ctx.now, policy=policy, open_case=bool(ticket), sent=sent)
    channels = [c for c in row.channels_left if c in decision.channels]
    if decision.status == "send" and not channels:
        decision = Decision("suppressed", "no_channel_left")
    if decision.status == "suppressed":
        await _suppress(ctx, row, decision.reason, ticket)
    elif decision.status == "deferred" and decision.not_before:
        await ctx.notes.change(nid, now=ctx.now, status="deferred", reason=decision.reason)
        await ctx.notes.arm(SEND, nid, due_at=decision.not_before)
    elif customer is not None:
        channel = channels[0]
        recipient = customer.handles[CHANNEL_HANDLE[channel]]
        await _send(ctx, row, channel, recipient, channels[1:], sender=sender)


async def _suppress(ctx: Ctx, row: Any, reason: str, ticket: str | None) -> None:
    await ctx.notes.change(row.id, now=ctx.now, status="suppressed", reason=reason)
    note = InternalNote(ticket_id=ticket, text=row.note) if ticket and row.note else None
    f = fields(row, reason=reason, channel=None) | {"occurred_at": ctx.now}
    await ctx.emit(NotificationSuppressed(**f, note=note), key=row.customer_id)


async def _template(ctx: Ctx, language: str | None, fallback: str) -> MessageTemplate:
    custom = {
        r.language: MessageTemplate(r.language, r.subject, r.body)
        for r in await ctx.notes.templates()
    }
    return pick(language, custom, fallback)


async def _send(
    ctx: Ctx, row: Any, channel: str, recipient: str, rest: list[str], *, sender: Sender
) -> None:
    policy = await ctx.policy()
    ship = await ctx.repo.shipment(row.shipment_id)
    url = ctx.tracking_url.format(
        carrier=ship.carrier if ship else "",
        tracking_number=await ctx.repo.tracking_number(row.shipment_id),
    )
    template = await _template(ctx, row.language, policy.default_language)
    subject, text = render(
        template, order_id=row.order_id or "", estimate=row.estimate, tracking_url=url
    )
    key = f"{row.id}:{channel}"
    message = Outgoing(ctx.tenant, channel, recipient, subject, text, key)
    try:
        accepted = await _deliver(ctx, row, message, sender=sender)
    except SendFailed as exc:
        await fallback(ctx, row, channel, rest, why="send_failed", error=str(exc)[:1000])
        return
    await ctx.notes.change(
        row.id, now=ctx.now, status="sent", reason="sent", channel=channel, recipient=recipient,
        channels_left=rest, provider=accepted.provider,
        provider_message_id=accepted.provider_message_id, attempts=row.attempts + 1,
    )  # fmt: skip
    f = fields(row, reason="sent", channel=channel) | {"occurred_at": ctx.now}
    sent = NotificationSent(
        **f, provider=accepted.provider, provider_message_id=accepted.provider_message_id,
        attempt=row.attempts + 1,
    )  # fmt: skip
    await ctx.emit(sent, key=row.customer_id)
    await ctx.notes.arm(RECEIPT, row.id, due_at=ctx.now + policy.delivery_timeout)


async def _deliver(ctx: Ctx, row: Any, message: Outgoing, *, sender: Sender) -> Accepted:
    """An HTTP provider when configured for the channel, else sb.outbound.v1 for the adapters."""
    if sender.handles(message.channel):
        return await sender.send(message)
    kind = HandleKind(CHANNEL_HANDLE[message.channel])
    out = OutboundMessage(
        message_id=message.idempotency_key[:64], customer_id=row.customer_id,
        channel=Channel(message.channel), recipient=Handle(kind=kind, value=message.recipient),
        text=message.text, subject=message.subject, kind="auto_reply", created_at=ctx.now,
    )  # fmt: skip
    await ctx.emit(out, key=row.customer_id)
    return Accepted("adapter", out.message_id)


async def fallback(
    ctx: Ctx, row: Any, channel: str, rest: list[str], *, why: str, error: str | None = None
) -> None:
    """A send failed or was not delivered in time: next channel now, the same one later, or give up."""
    attempts = row.attempts + 1
    if not rest and why == "send_failed" and attempts < OUTAGE_ROUNDS:
        # every channel is down (an outage): keep the alert and try the last one again later
        due = ctx.now + OUTAGE_BACKOFF * 2 ** (attempts - 1)
        await ctx.notes.change(
            row.id, now=ctx.now, status="scheduled", reason="provider_outage_retry",
            channels_left=[channel], attempts=attempts, not_before=due,
        )  # fmt: skip
        await ctx.notes.arm(SEND, row.id, due_at=due)
        return
    nxt = rest[0] if rest else None
    status = "scheduled" if nxt else "failed"
    await ctx.notes.change(
        row.id, now=ctx.now, status=status, reason=why, channel=nxt or channel,
        channels_left=rest, attempts=attempts,
    )  # fmt: skip
    f = fields(row, reason=why, channel=channel) | {"occurred_at": ctx.now}
    failed = NotificationFailed(**f, error=error, next_channel=Channel(nxt) if nxt else None)
    await ctx.emit(failed, key=row.customer_id)
    if nxt:
        await ctx.notes.arm(SEND, row.id, due_at=ctx.now)


async def fire_receipt_timeout(ctx: Ctx, nid: str) -> None:
    """No delivery receipt in time: fall back to the next channel."""
    row = await ctx.notes.get(nid, lock=True)
    if row is not None and row.status == "sent":
        await fallback(ctx, row, row.channel, list(row.channels_left), why="not_delivered_in_time")


async def on_receipt(ctx: Ctx, receipt: DeliveryReceiptReceived) -> None:
    """A provider receipt: delivered/read settles the notification, failed falls back."""
    row = await ctx.notes.by_provider_id(receipt.provider_message_id)
    if row is None or row.status != "sent":
        return
    if receipt.status in (ReceiptStatus.DELIVERED, ReceiptStatus.READ):
        await ctx.notes.change(row.id, now=ctx.now, status="delivered", reason="receipt_delivered")
        await ctx.notes.disarm(RECEIPT, row.id)
        f = fields(row, reason="receipt_delivered", channel=row.channel) | {"occurred_at": ctx.now}
        delivered = NotificationDelivered(**f, provider_message_id=row.provider_message_id)
        await ctx.emit(delivered, key=row.customer_id)
    elif receipt.status == ReceiptStatus.FAILED:
        await ctx.notes.disarm(RECEIPT, row.id)
        error = receipt.error_text or receipt.error_code
        await fallback(
            ctx, row, row.channel, list(row.channels_left), why="receipt_failed", error=error
        )
