"""Customer messages and abandoned calls become cases: open, append or reopen; classify; assign."""

from __future__ import annotations

from typing import Any

from routing.adapters.mapping import queue_from
from routing.domain.agents import weight_of
from routing.domain.calendar import is_open
from routing.domain.classify import Classification, reassess
from routing.domain.model import Arrival, CaseRef, JoinKind, Status, join
from routing.domain.queues import CaseFacts, match_queue
from routing.service_layer import outbound
from routing.service_layer.assign import try_assign
from routing.service_layer.classifier import classifier_for
from routing.service_layer.context import Ctx
from routing.service_layer.timers import (
    business_ms,
    resolution_used,
    schedule_escalation,
    start_sla,
    stop_sla,
)
from sbcontracts.events.crm import MessageAttributed
from sbcontracts.events.ingest import CallAbandoned, MessageReceived
from sbcontracts.events.routing import (
    SlaMetric,
    TicketClassified,
    TicketMessageAdded,
    TicketOpened,
    TicketReopened,
    TicketStatusChanged,
)


async def _candidates(ctx: Ctx, arrival: Arrival) -> list[CaseRef]:
    rows = list(await ctx.repo.customer_cases([arrival.customer_id]))
    threads = await ctx.repo.thread_owners(arrival.refs())
    known = {r.id for r in rows}
    if set(threads) - known:
        rows += await ctx.repo.tickets_by_ids(set(threads) - known)
    return [
        CaseRef(
            r.id,
            r.customer_id,
            Status(r.status),
            r.updated_at,
            r.resolved_at,
            frozenset(threads.get(r.id, ())),
        )
        for r in rows
    ]


async def on_message(ctx: Ctx, data: MessageAttributed) -> str | None:
    """Put an attributed message in its case (new, appended or reopened); returns the ticket id."""
    msg = data.message
    if await ctx.repo.has_message(msg.message_id):
        return None  # the same message re-published under another event id
    arrival = Arrival(
        data.customer_id,
        msg.received_at,
        msg.thread.message_id,
        msg.thread.in_reply_to,
        msg.thread.references,
    )
    decision = join(arrival, await _candidates(ctx, arrival), reopen_window=ctx.knobs.reopen_window)
    text = " ".join(p for p in (msg.subject, msg.text) if p)
    found = (await classifier_for(ctx)).classify(text, language=msg.language)
    found = _with_language(found, data.customer_language)
    if decision.kind is JoinKind.NEW or decision.case_id is None:
        ticket_id = await _open(ctx, data, found)
    else:
        ticket_id = decision.case_id
        if decision.kind is JoinKind.REOPEN:
            await reopen(ctx, ticket_id)
        await _append(ctx, ticket_id, msg, found)
    await _record(ctx, ticket_id, msg)
    await try_assign(ctx, ticket_id)
    return ticket_id


def _with_language(found: Classification, fallback: str | None) -> Classification:
    if found.language or not fallback:
        return found
    return Classification(
        found.category, found.sentiment, found.priority, fallback, found.confidence
    )


async def _open(ctx: Ctx, data: MessageAttributed, found: Classification) -> str:
    msg = data.message
    facts = CaseFacts(found.category, found.language, msg.channel, data.customer_tier)
    queues = [queue_from(r) for r in await ctx.repo.queues()]
    queue = match_queue(queues, facts)
    ticket_id = await ctx.repo.add_ticket(
        _new_row(ctx, data.customer_id, msg.channel, found)
        | {
            "queue_id": queue.id if queue else None,
            "subject": msg.subject,
            "tier": data.customer_tier,
        }
        | {"recipient": msg.sender.model_dump(mode="json"), "awaiting_since": msg.received_at}
        | {"last_agent_id": await _last_agent(ctx, data.customer_id)}
        # The cycle starts when the customer wrote, as the first response does (awaiting_since),
        # not when the case was processed: otherwise resolution time omits the pipeline's lag
        # and can come out shorter than the first response of the same case.
        | {"cycle_started_at": min(msg.received_at, ctx.now)}
    )
    ticket = await ctx.repo.ticket(ticket_id)
    await ctx.ticket_event(
        TicketOpened, ticket, first_message_id=msg.message_id, subject=msg.subject
    )
    await _classified(ctx, ticket, found)
    await _started(ctx, ticket)
    if queue and queue.auto_reply and not is_open(queue.hours, ctx.now):
        await outbound.auto_reply(ctx, ticket, queue.auto_reply)
    return ticket_id


def _new_row(ctx: Ctx, customer_id: str, channel: str, found: Classification) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "status": Status.NEW,
        "cycle": 1,
        "kind": "case",
        "weight": weight_of(channel),
        "channel": channel,
        "category": found.category,
        "sentiment": found.sentiment,
        "priority": found.priority,
        "language": found.language,
        "confidence": found.confidence,
        "created_at": ctx.now,
        "updated_at": ctx.now,
        "queued_at": ctx.now,
        "cycle_started_at": ctx.now,
        "paused_ms": 0,
    }


async def _last_agent(ctx: Ctx, customer_id: str) -> str | None:
    rows = await ctx.repo.list_tickets({"customer_id": customer_id}, limit=5, offset=0)
    return next((r.last_agent_id for r in rows if r.last_agent_id), None)


async def _started(ctx: Ctx, ticket: Any, *, fresh: bool = True) -> None:
    await start_sla(ctx, ticket, SlaMetric.FIRST_RESPONSE, fresh=fresh)
    await start_sla(ctx, ticket, SlaMetric.RESOLUTION, fresh=fresh)
    await schedule_escalation(ctx, ticket)


async def _classified(ctx: Ctx, ticket: Any, found: Classification) -> None:
    await ctx.ticket_event(
        TicketClassified,
        ticket,
        category=found.category,
        sentiment=found.sentiment,
        priority=found.priority,
        language=found.language,
        confidence=found.confidence,
    )


async def _append(ctx: Ctx, ticket_id: str, msg: MessageReceived, found: Classification) -> None:
    ticket = await ctx.repo.ticket(ticket_id, lock=True)
    assert ticket is not None
    changes: dict[str, Any] = {"updated_at": ctx.now, "channel": msg.channel}
    changes["recipient"] = msg.sender.model_dump(mode="json")
    if ticket.awaiting_since is None:
        changes["awaiting_since"] = msg.received_at
        await start_sla(ctx, ticket, SlaMetric.NEXT_RESPONSE)
    current = Classification(
        ticket.category, ticket.sentiment, ticket.priority, ticket.language, ticket.confidence
    )
    found = reassess(current, found)
    if found != current:
        changes |= {"category": found.category, "sentiment": found.sentiment}
        changes |= {"priority": found.priority, "confidence": found.confidence}
    updated = await ctx.repo.update_ticket(ticket_id, **changes)
    if "category" in changes:
        await _classified(ctx, updated, found)
    if ticket.status == Status.PENDING:
        await set_status(ctx, updated, Status.OPEN)


async def _record(ctx: Ctx, ticket_id: str, msg: MessageReceived) -> None:
    await ctx.repo.add_message(
        ticket_id,
        message_id=msg.message_id,
        direction="inbound",
        channel=msg.channel,
        thread_id=msg.thread.message_id,
        text=msg.text,
        at=msg.received_at,
    )
    ticket = await ctx.repo.update_ticket(
        ticket_id, last_provider_message_id=msg.provider_message_id
    )
    await ctx.ticket_event(
        TicketMessageAdded, ticket, message_id=msg.message_id, direction="inbound"
    )


async def set_status(ctx: Ctx, ticket: Any, target: Status) -> None:
    """Record a status change (already validated) with its event; pending pauses resolution SLA."""
    changes: dict[str, Any] = {"status": target, "updated_at": ctx.now}
    if target == Status.PENDING:
        changes["pending_since"] = ctx.now
    elif ticket.status == Status.PENDING and ticket.pending_since:
        paused = await business_ms(ctx, ticket, ticket.pending_since, ctx.now)
        changes |= {"pending_since": None, "paused_ms": (ticket.paused_ms or 0) + paused}
    updated = await ctx.repo.update_ticket(ticket.id, **changes)
    await ctx.ticket_event(
        TicketStatusChanged, updated, from_status=ticket.status, to_status=target
    )
    if target == Status.PENDING:  # the resolution clock stops while the customer owes an answer
        await stop_sla(ctx, ticket.id, SlaMetric.RESOLUTION)
    elif ticket.status == Status.PENDING and target == Status.OPEN:
        used = await resolution_used(ctx, updated)
        await start_sla(ctx, updated, SlaMetric.RESOLUTION, used=used)


async def reopen(ctx: Ctx, ticket_id: str) -> None:
    """Start a new cycle of a resolved case (measured from now), back in its queue."""
    ticket = await ctx.repo.ticket(ticket_id, lock=True)
    assert ticket is not None
    await ctx.repo.update_ticket(
        ticket_id,
        cycle=ticket.cycle + 1,
        cycle_started_at=ctx.now,
        first_response_at=None,
        resolved_at=None,
        paused_ms=0,
        queued_at=ctx.now,
        awaiting_since=ctx.now,
    )
    await set_status(ctx, ticket, Status.OPEN)
    updated = await ctx.repo.ticket(ticket_id)
    await ctx.ticket_event(TicketReopened, updated)
    await _started(ctx, updated, fresh=False)


async def on_call_abandoned(ctx: Ctx, data: CallAbandoned) -> str | None:
    """An abandoned call becomes a callback case in the callback queue."""
    if data.caller is None:
        return None
    queues = await ctx.repo.queues()
    callback = next((q.id for q in queues if q.config.get("callback")), None)
    found = Classification("other", "neutral", "high", None, 1.0)
    row = _new_row(ctx, data.caller.key(), "voice", found) | {
        "kind": "callback",
        "queue_id": callback,
    }
    ticket_id = await ctx.repo.add_ticket(row | {"recipient": data.caller.model_dump(mode="json")})
    ticket = await ctx.repo.ticket(ticket_id)
    await ctx.ticket_event(
        TicketOpened, ticket, kind="callback", subject=f"callback: call {data.call_id}"
    )
    await _started(ctx, ticket)
    await try_assign(ctx, ticket_id)
    return ticket_id
