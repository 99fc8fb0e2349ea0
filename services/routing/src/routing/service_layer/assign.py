"""Assignment: choose an eligible agent by the queue's policy and claim atomically; drain backlogs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from routing.adapters.mapping import agent_from, queue_from
from routing.adapters.repository import Want
from routing.domain.agents import Decision, Demand, Policy
from routing.domain.agents import choose as choose_agent
from routing.domain.queues import Queue
from routing.service_layer.context import Ctx
from sbcontracts.events.routing import TicketAssigned

ACTIVE = ("new", "open", "pending")
DRAIN_LIMIT = 50
CANDIDATES = 20  # best agents by the policy fetched per decision (SQL does the filtering)


async def _queue(ctx: Ctx, queue_id: str | None) -> tuple[Queue | None, Policy]:
    row = await ctx.repo.queue(queue_id) if queue_id else None
    if row is None:
        return None, Policy.LONGEST_IDLE
    return queue_from(row), Policy(row.policy)


def demand_of(ticket: Any, queue: Queue | None, ctx: Ctx) -> Demand:
    """What a waiting ticket asks of an agent, with skills relaxed for how long it has waited."""
    waited = (ctx.now - (ticket.queued_at or ticket.created_at)).total_seconds()
    needs = queue.needs_at(waited) if queue else ()
    return Demand(
        ticket.id, ticket.channel, ticket.language, needs, ticket.last_agent_id, ticket.weight
    )


async def try_assign(ctx: Ctx, ticket_id: str, *, only: str | None = None) -> str | None:
    """Give an unowned active ticket to the best eligible online agent; returns the agent id."""
    ticket = await ctx.repo.ticket(ticket_id)
    if ticket is None or ticket.agent_id or ticket.status not in ACTIVE:
        return None
    queue, policy = await _queue(ctx, ticket.queue_id)
    demand = demand_of(ticket, queue, ctx)
    rows = await _candidates(ctx, ticket, demand, policy, only)
    agents = [agent_from(r) for r in rows]
    while agents:
        decision = choose_agent(agents, demand, policy=policy)
        if decision.agent_id is None:
            return None
        if await ctx.repo.reserve(decision.agent_id, demand.weight, ctx.now):
            if not await ctx.repo.claim(ticket.id, decision.agent_id, ctx.now):
                await ctx.repo.release(decision.agent_id, demand.weight, ctx.now)
                return None  # another worker owns it now
            pool = await ctx.repo.online_count(ticket.queue_id) if only is None else 1
            await _announce(ctx, ticket, decision, candidates=pool)
            return decision.agent_id
        agents = [a for a in agents if a.id != decision.agent_id]  # it filled up meanwhile
    return None


async def _candidates(
    ctx: Ctx, ticket: Any, demand: Demand, policy: Policy, only: str | None
) -> list[Any]:
    """The best few eligible agents by the policy, plus the customer's last agent if eligible."""
    want = Want(
        weight=demand.weight,
        policy=policy,
        queue_id=ticket.queue_id,
        language=demand.language,
        skills=tuple((n.skill, n.level) for n in demand.needs),
        only=only,
    )
    rows = list(await ctx.repo.candidates(want, limit=CANDIDATES))
    last = demand.last_agent_id
    if last and only in (None, last) and all(r.id != last for r in rows):
        rows += await ctx.repo.candidates(replace(want, only=last), limit=1)
    return rows


async def _announce(ctx: Ctx, ticket: Any, decision: Decision, *, candidates: int) -> None:
    wait_ms = int((ctx.now - (ticket.queued_at or ticket.created_at)).total_seconds() * 1000)
    await ctx.ticket_event(
        TicketAssigned,
        ticket,
        agent_id=decision.agent_id,
        previous_agent_id=ticket.last_agent_id,
        wait_ms=max(wait_ms, 0),
        policy=str(decision.policy),
        reason=decision.reason,
        candidates_considered=candidates,
        eligible_agents=decision.eligible[:20],
    )


async def claim_for(ctx: Ctx, ticket: Any, agent_id: str) -> bool:
    """A manual assignment: reserve the agent's capacity and claim the ticket, atomically."""
    weight = ticket.weight
    if not await ctx.repo.reserve(agent_id, weight, ctx.now):
        return False
    if not await ctx.repo.claim(ticket.id, agent_id, ctx.now):
        await ctx.repo.release(agent_id, weight, ctx.now)
        return False
    decision = Decision(agent_id, "manual", 1, (agent_id,), "assigned by a person")
    await _announce(ctx, ticket, decision, candidates=1)
    return True


async def unassign(ctx: Ctx, ticket: Any) -> None:
    """Take a ticket from its owner and give the capacity back (the ticket keeps its place)."""
    if ticket.agent_id:
        await ctx.repo.update_ticket(ticket.id, agent_id=None, updated_at=ctx.now)
        await ctx.repo.release(ticket.agent_id, ticket.weight, ctx.now)


async def drain(ctx: Ctx, agent_id: str) -> int:
    """Offer the backlog to an agent who came online or freed capacity; returns tickets taken."""
    agent = await ctx.repo.agent(agent_id)
    if agent is None or agent.presence != "online":
        return 0
    queues = list(agent.queues) if agent.queues else None
    taken = 0
    for ticket in await ctx.repo.waiting(queues, limit=DRAIN_LIMIT):
        if await try_assign(ctx, ticket.id, only=agent_id):
            taken += 1
        fresh = await ctx.repo.agent(agent_id)
        if fresh is None or fresh.load + 10 > fresh.capacity:
            break
    return taken


async def drain_all(ctx: Ctx, queue_ids: list[str] | None = None) -> int:
    """Try every waiting ticket (oldest highest-priority first) against all online agents."""
    taken = 0
    for ticket in await ctx.repo.waiting(queue_ids, limit=DRAIN_LIMIT):
        if await try_assign(ctx, ticket.id):
            taken += 1
    return taken
