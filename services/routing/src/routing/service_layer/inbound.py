"""Customer messages and abandoned calls become cases: open, append or reopen; classify; assign."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from routing.domain.agents import Demand, weight_of
from routing.domain.calendar import is_open
from routing.domain.classify import Classification, reassess
from routing.domain.model import Arrival, CaseRef, JoinKind, Status, join
from routing.domain.orders import order_reference
from routing.domain.queues import CaseFacts, Queue, SkillNeed
from routing.domain.sla import message_time
from routing.service_layer import outbound
from routing.service_layer.assign import Picked, Wanted, announce, pick, pick_together, try_assign
from routing.service_layer.config import config
from routing.service_layer.context import Ctx
from routing.service_layer.snapshot import Config
from routing.service_layer.timers import (
    SLA_KINDS,
    business_ms,
    escalation_rows,
    queue_of,
    resolution_used,
    sla_rows,
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


@dataclass
class Known:
    """What a consumer batch read up front about its messages' customers, one query each.

    A customer's entries are dropped once one of their messages is applied (their cases changed),
    so later messages of theirs in the batch read the database again.
    """

    duplicates: set[str]
    last_agents: dict[str, str]
    cases: dict[str, list[Any]]
    # new cases whose decisions wait to be made together (`decide_openings`), on PostgreSQL
    openings: list[Opening] | None = None
    opened_by: set[str] = field(default_factory=set)  # their customers

    def applied(self, customer_id: str, message_id: str) -> None:
        """A message was applied: it is now a duplicate; its customer's entries are stale."""
        self.duplicates.add(message_id)
        self.cases.pop(customer_id, None)


@dataclass(frozen=True)
class Opening:
    """A new case prepared, waiting for its decision (`_opened` writes it)."""

    ctx: Ctx
    data: MessageAttributed
    found: Classification
    queue: Queue | None
    row: dict[str, Any]
    demand: Demand
    last_agent: str | None


async def prefetch(ctx: Ctx, batch: Sequence[MessageAttributed]) -> Known:
    """Read, for a batch of one tenant's messages, which are known and their customers' cases."""
    customers = {d.customer_id for d in batch}
    cases: dict[str, list[Any]] = {c: [] for c in customers}
    message_ids = [d.message.message_id for d in batch]
    openings: list[Opening] | None = [] if ctx.repo.postgres else None
    found = await ctx.repo.facts(customers, message_ids)  # one round trip on PostgreSQL
    if found is None:
        for row in await ctx.repo.customer_cases(customers):
            cases[row.customer_id].append(row)
        known = await ctx.repo.known_messages(message_ids)
        return Known(known, await ctx.repo.last_agents(customers), cases, openings)
    for row in found.cases:
        cases[row.customer_id].append(row)
    return Known(found.known, found.last_agents, cases, openings)


async def decide_openings(known: Known) -> None:
    """Decide the batch's waiting new cases together (`pick_together`) and write them, in the
    order their messages came."""
    openings, known.openings = known.openings or [], []
    known.opened_by.clear()
    if not openings:
        return
    wanted = [Wanted(o.ctx, o.demand, o.queue) for o in openings]
    for opening, picked in zip(openings, await pick_together(wanted), strict=True):
        await _opened(opening, picked)


async def _facts(
    ctx: Ctx, data: MessageAttributed, known: Known | None
) -> tuple[bool, str | None, list[Any]]:
    """Whether the message is known, the customer's last agent, their active/resolved cases."""
    cid = data.customer_id
    if known is not None and cid in known.cases:
        duplicate = data.message.message_id in known.duplicates
        return duplicate, known.last_agents.get(cid), known.cases[cid]
    duplicate, last_agent = await ctx.repo.arrival(data.message.message_id, cid)
    if duplicate:
        return True, None, []
    return False, last_agent, list(await ctx.repo.customer_cases([cid]))


async def _candidates(ctx: Ctx, arrival: Arrival, rows: list[Any]) -> list[CaseRef]:
    rows = list(rows)
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


def text_of(msg: MessageReceived) -> str:
    """What classification reads: the subject and the stripped text."""
    return " ".join(p for p in (msg.subject, msg.text) if p)


def written_at(ctx: Ctx, msg: MessageReceived) -> datetime:
    """When the customer wrote (SLA clocks start there, not when routing got to it)."""
    return message_time(msg.provider_timestamp, msg.received_at, now=ctx.now)


async def on_message(
    ctx: Ctx, data: MessageAttributed, *, known: Known | None = None
) -> str | None:
    """Put an attributed message in its case (new, appended or reopened); returns the ticket id.

    `known` is what a consumer batch prefetched; without it the facts are read here.
    """
    if known is not None and data.customer_id in known.opened_by:
        await decide_openings(known)  # this message may join that new case: write it first
    duplicate, last_agent, rows = await _facts(ctx, data, known)
    if duplicate:
        return None  # the same message re-published under another event id
    ticket_id = await _apply(ctx, data, last_agent, rows, known)
    if known is not None:
        known.applied(data.customer_id, data.message.message_id)
    return ticket_id


async def _apply(
    ctx: Ctx, data: MessageAttributed, last_agent: str | None, rows: list[Any], known: Known | None
) -> str:
    msg = data.message
    at = written_at(ctx, msg)
    refs = (msg.thread.message_id, msg.thread.in_reply_to, msg.thread.references)
    arrival = Arrival(data.customer_id, at, *refs)
    cases = await _candidates(ctx, arrival, rows)
    decision = join(arrival, cases, reopen_window=ctx.knobs.reopen_window)
    cfg = await config(ctx)
    found = cfg.classifier.classify(text_of(msg), language=msg.language)
    found = _with_language(found, data)
    if decision.kind is JoinKind.NEW or decision.case_id is None:
        opening = _opening(ctx, data, found, cfg=cfg, last_agent=last_agent)
        if known is not None and known.openings is not None:
            known.openings.append(opening)  # decided with the batch's other new cases
            known.opened_by.add(data.customer_id)
            return str(opening.row["id"])
        return await _opened(opening, await pick(ctx, opening.demand, opening.queue))
    ticket_id = decision.case_id
    if decision.kind is JoinKind.REOPEN:
        await reopen(ctx, ticket_id, at=at)
    ticket = await _append(ctx, ticket_id, msg, found)
    await _record(ctx, ticket, msg)
    await try_assign(ctx, ticket_id, ticket=ticket)
    return ticket_id


def _with_language(found: Classification, data: MessageAttributed) -> Classification:
    if found.language or not data.customer_language:
        return found
    return replace(found, language=data.customer_language)


def _opening(
    ctx: Ctx, data: MessageAttributed, found: Classification, *, cfg: Config, last_agent: str | None
) -> Opening:
    """A new case's row and what it asks of an agent, before its decision."""
    msg, at = data.message, written_at(ctx, data.message)
    queue = cfg.match(CaseFacts(found.category, found.language, msg.channel, data.customer_tier))
    row = _new_row(ctx, data.customer_id, msg.channel, found) | {
        "id": str(uuid.uuid4()),
        "queue_id": queue.id if queue else None,
        "subject": msg.subject,
        "tier": data.customer_tier,
        "recipient": msg.sender.model_dump(mode="json"),
        "last_provider_message_id": msg.provider_message_id,
        "order_id": order_reference(text_of(msg), data.recent_order_ids),
        # Both clocks start when the customer wrote, not when the case was processed.
        "awaiting_since": at,
        "cycle_started_at": at,
        "last_agent_id": last_agent,
    }
    demand = Demand(
        row["id"], msg.channel, found.language, _needs(queue), last_agent, row["weight"]
    )
    return Opening(ctx, data, found, queue, row, demand, last_agent)


async def _opened(opening: Opening, picked: Picked | None) -> str:
    """A new case: queued, reserved for an agent if one was free (`picked`), inserted once,
    timed."""
    ctx, data, found, queue = opening.ctx, opening.data, opening.found, opening.queue
    msg, at, last_agent = data.message, written_at(ctx, data.message), opening.last_agent
    row = dict(opening.row)
    if picked is not None:
        row |= {"agent_id": picked.decision.agent_id, "last_agent_id": picked.decision.agent_id}
    ticket = await ctx.repo.add_ticket(row)
    unowned = {"agent_id": None}  # the events before ticket.assigned describe the unowned case
    await ctx.ticket_event(
        TicketOpened,
        ticket,
        first_message_id=msg.message_id,
        subject=msg.subject,
        order_id=ticket.order_id,
        **unowned,
    )
    await _classified(ctx, ticket, found, **unowned)
    timers = sla_rows(queue, ticket, SlaMetric.FIRST_RESPONSE, start=at)
    timers += sla_rows(queue, ticket, SlaMetric.RESOLUTION, start=at)
    if picked is None:  # relaxation and escalation only matter while it waits
        timers += escalation_rows(queue, ticket, start=ctx.now, now=ctx.now)
    await ctx.repo.add_timers(ticket.id, timers)
    if queue and queue.auto_reply and not is_open(queue.hours, ctx.now):
        await outbound.auto_reply(ctx, ticket, queue.auto_reply)
    await _record(ctx, ticket, msg, **unowned)
    if picked is not None:
        await announce(ctx, ticket, picked, previous=last_agent)
    return str(ticket.id)


def _needs(queue: Queue | None) -> tuple[SkillNeed, ...]:
    return queue.needs_at(0) if queue else ()


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


async def _started(ctx: Ctx, ticket: Any, *, start: datetime) -> None:
    """SLA timers of a (re)opened case from `start`, and its relaxation/escalation timers."""
    queue = await queue_of(ctx, ticket)
    await ctx.repo.cancel_timers(ticket.id, SLA_KINDS)
    timers = sla_rows(queue, ticket, SlaMetric.FIRST_RESPONSE, start=start)
    timers += sla_rows(queue, ticket, SlaMetric.RESOLUTION, start=start)
    timers += escalation_rows(queue, ticket, start=ctx.now, now=ctx.now)
    await ctx.repo.add_timers(ticket.id, timers)


async def _classified(ctx: Ctx, ticket: Any, found: Classification, **extra: Any) -> None:
    await ctx.ticket_event(
        TicketClassified,
        ticket,
        category=found.category,
        sentiment=found.sentiment,
        priority=found.priority,
        language=found.language,
        confidence=found.confidence,
        **extra,
    )


async def _append(ctx: Ctx, ticket_id: str, msg: MessageReceived, found: Classification) -> Any:
    """The case takes the message's channel and handle, reassessed; returns the updated row."""
    ticket = await ctx.repo.ticket(ticket_id, lock=True)
    assert ticket is not None
    changes: dict[str, Any] = {"updated_at": ctx.now, "channel": msg.channel}
    changes["recipient"] = msg.sender.model_dump(mode="json")
    changes["last_provider_message_id"] = msg.provider_message_id
    if ticket.awaiting_since is None:
        at = written_at(ctx, msg)
        changes["awaiting_since"] = at
        await start_sla(ctx, ticket, SlaMetric.NEXT_RESPONSE, start=at)
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
        return await set_status(ctx, updated, Status.OPEN)
    return updated


async def _record(ctx: Ctx, ticket: Any, msg: MessageReceived, **extra: Any) -> None:
    await ctx.repo.add_message(
        ticket.id,
        message_id=msg.message_id,
        direction="inbound",
        channel=msg.channel,
        thread_id=msg.thread.message_id,
        text=msg.text,
        at=msg.received_at,
    )
    await ctx.ticket_event(
        TicketMessageAdded, ticket, message_id=msg.message_id, direction="inbound", **extra
    )


async def set_status(ctx: Ctx, ticket: Any, target: Status) -> Any:
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
    return updated


async def reopen(ctx: Ctx, ticket_id: str, *, at: datetime | None = None) -> None:
    """Start a new cycle of a resolved case, back in its queue; its clocks start at `at` (when
    the customer wrote; now for an agent's reopen)."""
    start = at or ctx.now
    ticket = await ctx.repo.ticket(ticket_id, lock=True)
    assert ticket is not None
    await ctx.repo.update_ticket(
        ticket_id,
        cycle=ticket.cycle + 1,
        cycle_started_at=start,
        first_response_at=None,
        resolved_at=None,
        paused_ms=0,
        queued_at=ctx.now,
        awaiting_since=start,
    )
    updated = await set_status(ctx, ticket, Status.OPEN)
    await ctx.ticket_event(TicketReopened, updated)
    await _started(ctx, updated, start=start)


async def on_call_abandoned(ctx: Ctx, data: CallAbandoned) -> str | None:
    """An abandoned call becomes a callback case in the callback queue."""
    if data.caller is None:
        return None
    callback = (await config(ctx)).callback_queue
    found = Classification("other", "neutral", "high", None, 1.0)
    row = _new_row(ctx, data.caller.key(), "voice", found) | {
        "kind": "callback",
        "queue_id": callback.id if callback else None,
    }
    ticket = await ctx.repo.add_ticket(row | {"recipient": data.caller.model_dump(mode="json")})
    await ctx.ticket_event(
        TicketOpened, ticket, kind="callback", subject=f"callback: call {data.call_id}"
    )
    await _started(ctx, ticket, start=ctx.now)
    await try_assign(ctx, ticket.id, ticket=ticket)
    return str(ticket.id)
