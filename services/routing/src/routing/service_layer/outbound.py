"""Messages to customers: agent replies and after-hours auto-replies, on the channel last used."""

from __future__ import annotations

import uuid
from typing import Any

from routing.service_layer.context import Ctx
from sbcontracts.events.common import Handle
from sbcontracts.events.outbound import OutboundMessage


async def send(ctx: Ctx, ticket: Any, text: str, *, agent_id: str | None, kind: str) -> str:
    """Emit an outbound.message to the customer's last handle and channel; returns its id."""
    message_id = str(uuid.uuid4())
    if ticket.recipient is None:
        return message_id  # nowhere to send (recorded in the history only)
    await ctx.emit(
        OutboundMessage(
            message_id=message_id,
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            channel=ticket.channel,
            recipient=Handle.model_validate(ticket.recipient),
            text=text,
            subject=f"Re: {ticket.subject}"
            if ticket.subject and ticket.channel == "email"
            else None,
            in_reply_to=ticket.last_provider_message_id,
            agent_id=agent_id,
            kind=kind,
            created_at=ctx.now,
        ),
        key_id=ticket.customer_id,
    )
    return message_id


async def auto_reply(ctx: Ctx, ticket: Any, text: str) -> None:
    """Tell the customer we are closed and will answer when we open."""
    message_id = await send(ctx, ticket, text, agent_id=None, kind="auto_reply")
    await ctx.repo.add_message(
        ticket.id,
        message_id=message_id,
        direction="outbound",
        channel=ticket.channel,
        text=text,
        at=ctx.now,
    )
