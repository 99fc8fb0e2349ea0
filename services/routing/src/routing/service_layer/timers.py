"""Durable timers: SLA warnings and breaches, escalation to a fallback queue, re-queue after offline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from routing.domain.calendar import business_between
from routing.domain.queues import Queue
from routing.domain.sla import deadline, targets_for
from routing.service_layer.assign import ACTIVE, try_assign, unassign
from routing.service_layer.config import config
from routing.service_layer.context import Ctx
from sbcontracts.events.routing import (
    SlaMetric,
    TicketSlaBreached,
    TicketSlaWarning,
    TicketTransferred,
)

SLA_KINDS = ("sla_warning", "sla_breached")


async def queue_of(ctx: Ctx, ticket: Any) -> Queue | None:
    """The domain queue of a ticket, if it has one."""
    return (await config(ctx)).queue(ticket.queue_id)


def sla_rows(
    queue: Queue | None,
    ticket: Any,
    metric: SlaMetric,
    *,
    start: datetime,
    used: timedelta = timedelta(0),
) -> list[dict[str, Any]]:
    """The warning and breach timers of one metric started at `start` (none without a target)."""
    if queue is None:
        return []
    target = getattr(targets_for(queue.sla, ticket.priority), f"{metric}_s")
    found = deadline(metric, target, start=start, hours=queue.hours, used=used)
    if found is None:
        return []
    common = {"metric": metric, "cycle": ticket.cycle, "due_at": found.due_at}
    return [
        common | {"kind": "sla_warning", "fire_at": found.warn_at},
        common | {"kind": "sla_breached", "fire_at": found.due_at},
    ]


async def start_sla(
    ctx: Ctx,
    ticket: Any,
    metric: SlaMetric,
    *,
    start: datetime | None = None,
    used: timedelta = timedelta(0),
) -> None:
    """(Re)schedule the warning and breach timers of one metric from `start` (default now)."""
    rows = sla_rows(await queue_of(ctx, ticket), ticket, metric, start=start or ctx.now, used=used)
    if rows:
        await ctx.repo.cancel_timers(ticket.id, SLA_KINDS, metric)
        await ctx.repo.add_timers(ticket.id, rows)


async def stop_sla(ctx: Ctx, ticket_id: str, metric: SlaMetric | None = None) -> None:
    """Cancel SLA timers (of one metric, or all)."""
    await ctx.repo.cancel_timers(ticket_id, SLA_KINDS, metric)


async def resolution_used(ctx: Ctx, ticket: Any) -> timedelta:
    """Business time of the cycle so far, minus time spent pending on the customer."""
    queue = await queue_of(ctx, ticket)
    hours = queue.hours if queue else None
    spent = business_between(hours, ticket.cycle_started_at, ctx.now)
    return max(spent - timedelta(milliseconds=ticket.paused_ms or 0), timedelta(0))


async def business_ms(ctx: Ctx, ticket: Any, start: datetime, end: datetime) -> int:
    """Business milliseconds between two instants on the ticket's queue calendar."""
    queue = await queue_of(ctx, ticket)
    spent = business_between(queue.hours if queue else None, start, end)
    return int(spent.total_seconds() * 1000)


def _still_due(ticket: Any, metric: str) -> bool:
    if ticket.status not in ACTIVE:
        return False
    if metric == SlaMetric.FIRST_RESPONSE:
        return ticket.first_response_at is None
    if metric == SlaMetric.NEXT_RESPONSE:
        return ticket.awaiting_since is not None
    return ticket.status != "pending"


async def fire(ctx: Ctx, timer: Any) -> None:
    """Act on one due timer (it is marked done by the caller in the same transaction)."""
    ticket = await ctx.repo.ticket(timer.ticket_id, lock=True)
    if ticket is None or ticket.cycle != timer.cycle:
        return
    if timer.kind in SLA_KINDS:
        if _still_due(ticket, timer.metric):
            model = TicketSlaWarning if timer.kind == "sla_warning" else TicketSlaBreached
            await ctx.ticket_event(
                model, ticket, metric=SlaMetric(timer.metric), due_at=timer.due_at
            )
    elif timer.kind == "escalate":
        await escalate(ctx, ticket, from_queue=timer.metric)
    elif timer.kind == "retry" and ticket.queue_id == timer.metric:
        await try_assign(ctx, ticket.id)  # requirements just relaxed
    elif timer.kind == "requeue":
        await requeue_if_still_away(ctx, ticket, agent_id=timer.metric)


async def escalate(ctx: Ctx, ticket: Any, *, from_queue: str | None) -> None:
    """Move a still-unowned ticket to its queue's fallback queue."""
    if ticket.agent_id or ticket.status not in ACTIVE or ticket.queue_id != from_queue:
        return
    cfg = await config(ctx)
    queue = cfg.queue(ticket.queue_id)
    if queue is None or not queue.fallback_queue or cfg.queue(queue.fallback_queue) is None:
        return
    await move_to_queue(
        ctx, ticket, queue.fallback_queue, reason="escalated: nobody matched in time"
    )


async def move_to_queue(ctx: Ctx, ticket: Any, queue_id: str, *, reason: str) -> None:
    """Put a ticket in another queue (unowned, queued now) and try to assign it there."""
    await unassign(ctx, ticket)
    await ctx.repo.update_ticket(
        ticket.id, queue_id=queue_id, queued_at=ctx.now, updated_at=ctx.now
    )
    moved = await ctx.repo.ticket(ticket.id)
    await ctx.ticket_event(TicketTransferred, moved, from_queue=ticket.queue_id, reason=reason)
    await schedule_escalation(ctx, moved)
    await try_assign(ctx, ticket.id)


async def schedule_escalation(ctx: Ctx, ticket: Any, *, since: datetime | None = None) -> None:
    """Time the queue's relaxation steps (each retries assignment) and escalation from `since`."""
    rows = escalation_rows(await queue_of(ctx, ticket), ticket, start=since or ctx.now, now=ctx.now)
    await ctx.repo.add_timers(ticket.id, rows)


def escalation_rows(
    queue: Queue | None, ticket: Any, *, start: datetime, now: datetime
) -> list[dict[str, Any]]:
    """Timers of the queue's relaxation steps and escalation, counted from `start`."""
    if queue is None:
        return []
    timers = [("retry", step.after_s) for step in queue.relax]
    if queue.fallback_queue and queue.escalate_after_s is not None:
        timers.append(("escalate", queue.escalate_after_s))
    rows = []
    for kind, after_s in timers:
        at = max(start + timedelta(seconds=after_s), now)
        rows.append(
            {"kind": kind, "metric": queue.id, "cycle": ticket.cycle, "due_at": at, "fire_at": at}
        )
    return rows


async def requeue_if_still_away(ctx: Ctx, ticket: Any, *, agent_id: str) -> None:
    """After the grace period: if the agent is still not online, their ticket goes back to the queue."""
    agent = await ctx.repo.agent(agent_id)
    if ticket.agent_id != agent_id or (agent is not None and agent.presence == "online"):
        return
    await unassign(ctx, ticket)
    moved = await ctx.repo.ticket(ticket.id)
    await ctx.ticket_event(
        TicketTransferred, moved, from_queue=ticket.queue_id, reason="agent offline"
    )
    if not await try_assign(ctx, ticket.id):  # waiting again: its place and escalation clock kept
        await schedule_escalation(ctx, ticket, since=ticket.queued_at)
