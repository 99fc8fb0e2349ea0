"""What agents do to tickets: reply, note, assign, transfer, change status, resolve, reopen."""

from __future__ import annotations

from typing import Any

from routing.domain.calendar import business_between
from routing.domain.model import InvalidTransition, Status, can_reply, check_transition
from routing.service_layer import outbound
from routing.service_layer.assign import claim_for, drain, try_assign, unassign
from routing.service_layer.context import Ctx
from routing.service_layer.errors import (
    AgentNotFound,
    InvalidStatus,
    NoCapacity,
    QueueNotFound,
    TicketNotFound,
)
from routing.service_layer.inbound import reopen as reopen_case
from routing.service_layer.inbound import set_status
from routing.service_layer.timers import move_to_queue, queue_of, stop_sla
from sbcontracts.events.routing import (
    SlaMetric,
    TicketAgentReplied,
    TicketMessageAdded,
    TicketResolved,
)


async def ticket_or_404(ctx: Ctx, ticket_id: str) -> Any:
    """The ticket, locked, or TicketNotFound."""
    ticket = await ctx.repo.ticket(ticket_id, lock=True)
    if ticket is None:
        raise TicketNotFound(f"no ticket {ticket_id}")
    return ticket


async def _agent(ctx: Ctx, agent_id: str) -> Any:
    agent = await ctx.repo.agent(agent_id)
    if agent is None:
        raise AgentNotFound(f"no agent {agent_id}")
    return agent


def _check(current: str, target: Status) -> None:
    try:
        check_transition(Status(current), target)
    except InvalidTransition as exc:
        raise InvalidStatus(str(exc)) from exc


async def reply(ctx: Ctx, ticket_id: str, *, agent_id: str, text: str, status: str) -> str:
    """Answer the customer on the channel they last used; returns the outbound message id."""
    ticket = await ticket_or_404(ctx, ticket_id)
    await _agent(ctx, agent_id)
    if not can_reply(Status(ticket.status)) or ticket.status == Status.RESOLVED:
        raise InvalidStatus(f"cannot reply to a {ticket.status} case")
    message_id = await outbound.send(ctx, ticket, text, agent_id=agent_id, kind="reply")
    await ctx.repo.add_message(
        ticket_id,
        message_id=message_id,
        direction="outbound",
        channel=ticket.channel,
        author=agent_id,
        text=text,
        at=ctx.now,
    )
    since = ticket.awaiting_since or ticket.cycle_started_at
    queue = await queue_of(ctx, ticket)
    business = business_between(queue.hours if queue else None, since, ctx.now)
    first = ticket.first_response_at is None
    await ctx.repo.update_ticket(
        ticket_id,
        awaiting_since=None,
        first_response_at=ticket.first_response_at or ctx.now,
        updated_at=ctx.now,
    )
    await stop_sla(ctx, ticket_id, SlaMetric.FIRST_RESPONSE)
    await stop_sla(ctx, ticket_id, SlaMetric.NEXT_RESPONSE)
    fresh = await ctx.repo.ticket(ticket_id)
    await ctx.ticket_event(TicketMessageAdded, fresh, message_id=message_id, direction="outbound")
    await ctx.ticket_event(
        TicketAgentReplied,
        fresh,
        agent_id=agent_id,
        message_id=message_id,
        first_response=first,
        response_ms=_ms(ctx.now - since),
        business_response_ms=_ms(business),
    )
    target = Status(status)
    if target != Status(ticket.status):
        _check(ticket.status, target)
        await set_status(ctx, fresh, target)
    return message_id


def _ms(delta: Any) -> int:
    return max(int(delta.total_seconds() * 1000), 0)


async def note(ctx: Ctx, ticket_id: str, *, agent_id: str, text: str) -> str:
    """An internal note (never sent to the customer)."""
    ticket = await ticket_or_404(ctx, ticket_id)
    await _agent(ctx, agent_id)
    message_id = f"note-{ticket_id[:8]}-{int(ctx.now.timestamp() * 1000)}"
    await ctx.repo.add_message(
        ticket_id,
        message_id=message_id,
        direction="internal",
        author=agent_id,
        text=text,
        at=ctx.now,
    )
    await ctx.ticket_event(TicketMessageAdded, ticket, message_id=message_id, direction="internal")
    return message_id


async def assign(ctx: Ctx, ticket_id: str, *, agent_id: str) -> None:
    """Give the ticket to a named agent (atomic: capacity and single owner); frees the previous one."""
    ticket = await ticket_or_404(ctx, ticket_id)
    await _agent(ctx, agent_id)
    if ticket.status not in ("new", "open", "pending"):
        raise InvalidStatus(f"cannot assign a {ticket.status} case")
    if ticket.agent_id == agent_id:
        return
    previous = ticket.agent_id
    await unassign(ctx, ticket)
    if not await claim_for(ctx, await ctx.repo.ticket(ticket_id), agent_id):
        raise NoCapacity(f"agent {agent_id} is not online or has no capacity for this case")
    if previous:
        await drain(ctx, previous)


async def transfer(ctx: Ctx, ticket_id: str, *, queue_id: str, reason: str | None) -> None:
    """Move the ticket to another queue; it waits there for the next eligible agent."""
    ticket = await ticket_or_404(ctx, ticket_id)
    if await ctx.repo.queue(queue_id) is None:
        raise QueueNotFound(f"no queue {queue_id}")
    if ticket.status not in ("new", "open", "pending"):
        raise InvalidStatus(f"cannot transfer a {ticket.status} case")
    previous = ticket.agent_id
    await move_to_queue(ctx, ticket, queue_id, reason=reason or "transferred by an agent")
    if previous:
        await drain(ctx, previous)


async def change_status(ctx: Ctx, ticket_id: str, target: Status) -> None:
    """Move the case forward (resolve goes through `resolve`)."""
    if target == Status.RESOLVED:
        await resolve(ctx, ticket_id)
        return
    ticket = await ticket_or_404(ctx, ticket_id)
    _check(ticket.status, target)
    if target == Status.CLOSED:
        await stop_sla(ctx, ticket_id)
    await set_status(ctx, ticket, target)


async def resolve(ctx: Ctx, ticket_id: str) -> None:
    """Resolve the case: free the agent, stop timers, report resolution time of this cycle."""
    ticket = await ticket_or_404(ctx, ticket_id)
    _check(ticket.status, Status.RESOLVED)
    queue = await queue_of(ctx, ticket)
    business = business_between(queue.hours if queue else None, ticket.cycle_started_at, ctx.now)
    owner = ticket.agent_id
    await unassign(ctx, ticket)
    await stop_sla(ctx, ticket_id)
    cleared = await ctx.repo.update_ticket(ticket_id, resolved_at=ctx.now, awaiting_since=None)
    await set_status(ctx, cleared, Status.RESOLVED)
    fresh = await ctx.repo.ticket(ticket_id)
    await ctx.ticket_event(
        TicketResolved,
        fresh,
        agent_id=owner,
        resolution_ms=_ms(ctx.now - ticket.cycle_started_at),
        business_resolution_ms=_ms(business),
        category=ticket.category,
    )
    if owner:
        await drain(ctx, owner)


async def reopen(ctx: Ctx, ticket_id: str) -> None:
    """Reopen a resolved case by hand (a new cycle), back in its queue."""
    ticket = await ticket_or_404(ctx, ticket_id)
    _check(ticket.status, Status.OPEN)
    if ticket.status != Status.RESOLVED:
        raise InvalidStatus(f"only a resolved case can be reopened, not a {ticket.status} one")
    await reopen_case(ctx, ticket_id)
    await try_assign(ctx, ticket_id)
