"""Notes from other services: a suppressed proactive alert becomes an internal note on the open case."""

from __future__ import annotations

import hashlib

import structlog

from routing.service_layer.context import Ctx
from sbcontracts.events.notifier import NotificationSuppressed
from sbcontracts.events.routing import TicketMessageAdded

log = structlog.get_logger(__name__)

PREFIX = "Customer was about to be told their parcel is late: "


def note_message_id(notification_id: str) -> str:
    """One note per notification: its message id is derived from the notification id."""
    readable = f"ntf-{notification_id}"
    if len(readable) <= 64:
        return readable
    return "ntf-" + hashlib.sha256(notification_id.encode()).hexdigest()[:40]


async def on_suppressed(ctx: Ctx, data: NotificationSuppressed) -> str | None:
    """Attach the note to its case (also a closed one, as history; never reopens); returns its id.

    No note, no ticket id, or a ticket this tenant does not have: logged, nothing changes.
    """
    note = data.note
    if note is None or not note.ticket_id:
        return None
    ticket = await ctx.repo.ticket(note.ticket_id, lock=True)
    if ticket is None:
        log.warning(
            "routing.note.unknown_ticket",
            tenant=ctx.tenant,
            ticket_id=note.ticket_id,
            notification_id=data.notification_id,
        )
        return None
    message_id = note_message_id(data.notification_id)
    if await ctx.repo.has_message(message_id):
        return None  # the same notification again (a re-emit past the inbox): one note
    await ctx.repo.add_message(
        ticket.id,
        message_id=message_id,
        direction="internal",
        author="notifier",
        text=PREFIX + note.text,
        at=ctx.now,
    )
    await ctx.ticket_event(TicketMessageAdded, ticket, message_id=message_id, direction="internal")
    return message_id
