"""Tickets and notifications on the card and timeline (events of routing and notifier)."""

from __future__ import annotations

from typing import Any

from crm.service_layer import identity
from crm.service_layer.context import Ctx
from crm.service_layer.errors import CustomerNotFound
from sbcontracts.events.notifier import NotificationData
from sbcontracts.events.routing import (
    TicketAgentReplied,
    TicketClassified,
    TicketData,
    TicketOpened,
    TicketReopened,
    TicketResolved,
    TicketStatusChanged,
)

NOTIFICATION_SUMMARY = 280


async def _live_or_none(ctx: Ctx, customer_id: str) -> str | None:
    """The live customer, or None when it was erased (its activity is dropped)."""
    try:
        return await identity.live_id(ctx, customer_id)
    except CustomerNotFound:
        return None


def _ticket_values(ev: TicketData) -> dict[str, Any]:
    """What a ticket event changes on the ticket's summary."""
    values: dict[str, Any] = {"updated_at": ev.occurred_at, "channel": _channel(ev)}
    if isinstance(ev, TicketOpened):
        values.update(status="open", subject=ev.subject, order_id=ev.order_id)
    elif isinstance(ev, TicketStatusChanged):
        values["status"] = ev.to_status.value
    elif isinstance(ev, TicketResolved):
        values.update(status="resolved", category=ev.category.value if ev.category else None)
    elif isinstance(ev, TicketReopened):
        values["status"] = "open"
    elif isinstance(ev, TicketClassified):
        values["category"] = ev.category.value
    return values


def _channel(ev: TicketData) -> str | None:
    return ev.channel.value if ev.channel else None


def _ticket_entry(ev: TicketData) -> str | None:
    """The timeline line of a ticket event, or None for events that stay off the timeline."""
    if isinstance(ev, TicketOpened):
        return f"case opened: {ev.subject}" if ev.subject else "case opened"
    if isinstance(ev, TicketResolved):
        return f"case resolved ({ev.category.value})" if ev.category else "case resolved"
    if isinstance(ev, TicketReopened):
        return "case reopened"
    if isinstance(ev, TicketAgentReplied):
        return f"agent {ev.agent_id or ''} replied".replace("  ", " ")
    return None


async def on_ticket(ctx: Ctx, event_id: str, ev: TicketData) -> str | None:
    """Keep the ticket's summary for the card; open/resolve/reopen/replies on the timeline."""
    cid = await _live_or_none(ctx, ev.customer_id)
    if cid is None:
        return None
    await ctx.repo.save_ticket(
        ev.ticket_id, customer_id=ev.customer_id, opened_at=ev.occurred_at, **_ticket_values(ev)
    )
    line = _ticket_entry(ev)
    if line:
        await ctx.repo.add_timeline(
            cid,
            source_event_id=event_id,
            kind="ticket",
            ref=ev.ticket_id,
            occurred_at=ev.occurred_at,
            channel=_channel(ev),
            summary=line,
        )
    return cid


async def on_notification(ctx: Ctx, event_id: str, ev: NotificationData) -> str | None:
    """Every notification decision on the customer's timeline."""
    cid = await _live_or_none(ctx, ev.customer_id)
    if cid is None:
        return None
    what = ev.event_type.rsplit(".", 1)[-1]
    await ctx.repo.add_timeline(
        cid,
        source_event_id=event_id,
        kind="notification",
        ref=ev.notification_id,
        occurred_at=ev.occurred_at,
        channel=ev.channel.value if ev.channel else None,
        summary=f"{what}: {ev.delay_reason} ({ev.reason})"[:NOTIFICATION_SUMMARY],
    )
    return cid
