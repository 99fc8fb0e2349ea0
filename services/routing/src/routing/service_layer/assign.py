"""Assignment: choose an eligible agent by the queue's policy and claim atomically; drain backlogs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from routing.adapters.eligibility import Want
from routing.adapters.repository import Reservation
from routing.domain.agents import SHOWN, Agent, Board, Decision, Demand, Policy, Presence
from routing.domain.agents import choose as choose_agent
from routing.domain.queues import Queue
from routing.service_layer.config import config
from routing.service_layer.context import Ctx
from sbcontracts.events.routing import TicketAssigned

ACTIVE = ("new", "open", "pending")
DRAIN_LIMIT = 50
# deciding together: at most this many agents beyond the SHOWN are read per demand shape, and a
# reservation that found some chosen agents held is decided again at most this many times
EXTRA_READ = 100
ROUNDS = 8
# cases of distinct shapes are decided together from this many on: one read of their agents and
# one reservation instead of a decision statement each (two cases: two statements either way)
TOGETHER_FROM = 3
BUSY_RETRY = timedelta(seconds=1)  # every eligible agent was held by another transaction


@dataclass(frozen=True)
class Picked:
    """An agent whose capacity is reserved for a case, and why."""

    decision: Decision
    pool: int


def demand_of(ticket: Any, queue: Queue | None, ctx: Ctx) -> Demand:
    """What a waiting ticket asks of an agent, with skills relaxed for how long it has waited."""
    waited = (ctx.now - (ticket.queued_at or ticket.created_at)).total_seconds()
    needs = queue.needs_at(waited) if queue else ()
    return Demand(
        ticket.id, ticket.channel, ticket.language, needs, ticket.last_agent_id, ticket.weight
    )


async def try_assign(
    ctx: Ctx, ticket_id: str, *, only: str | None = None, ticket: Any = None
) -> str | None:
    """Give an unowned active ticket to the best eligible online agent; returns the agent id."""
    ticket = ticket if ticket is not None else await ctx.repo.ticket(ticket_id)
    if ticket is None or ticket.agent_id or ticket.status not in ACTIVE:
        return None
    queue = (await config(ctx)).queue(ticket.queue_id)
    picked = await pick(ctx, demand_of(ticket, queue, ctx), queue, only=only, cycle=ticket.cycle)
    if picked is None:
        return None
    agent_id = picked.decision.agent_id
    assert agent_id is not None
    if not await ctx.repo.claim(ticket.id, agent_id, ctx.now):
        await ctx.repo.release(agent_id, ticket.weight, ctx.now)
        return None  # another worker owns it now
    await announce(ctx, ticket, picked, previous=ticket.last_agent_id)
    return agent_id


def want_of(demand: Demand, queue: Queue | None, *, only: str | None = None) -> Want:
    """What `demand` asks of an agent, for the SQL of its decision."""
    return Want(
        weight=demand.weight,
        policy=Policy(queue.policy) if queue else Policy.LONGEST_IDLE,
        queue_id=queue.id if queue else None,
        language=demand.language,
        skills=tuple((n.skill, n.level) for n in demand.needs),
        only=only,
        last=demand.last_agent_id if only in (None, demand.last_agent_id) else None,
    )


@dataclass(frozen=True)
class Wanted:
    """A new case waiting for its decision in a consumer batch."""

    ctx: Ctx
    demand: Demand
    queue: Queue | None


async def pick_together(wanted: Sequence[Wanted]) -> list[Picked | None]:
    """`pick` for several new cases of one tenant and transaction, in order, with one read of
    the agents per demand shape (queue, language, skills, units) instead of one decision
    statement per case, when that saves statements (some shape repeats, or TOGETHER_FROM
    cases or more).

    A case with a last agent to prefer, or every case when fewer than TOGETHER_FROM are left
    and no shape repeats, is decided by `pick`, first. The others are decided one after
    another on a `Board` from one read of each shape's best agents (SHOWN plus one per case
    decided together, at most EXTRA_READ more), so each decision sees the earlier ones'
    reservations and its candidates and reason are what `pick` would give after them; then one
    statement reserves them all, or none if another transaction holds some chosen agent: those
    are marked busy and the cases decided again (as the skip-locked walk passes held agents).
    A case the board cannot decide (too few agents read, all held) and every case after
    ROUNDS attempts goes through `pick`, after the others' reservations.
    """
    found: list[Picked | None] = [None] * len(wanted)
    wants = [want_of(w.demand, w.queue) for w in wanted]
    shapes: dict[Want, list[int]] = {}
    for i, want in enumerate(wants):
        shapes.setdefault(want, []).append(i)
    together = [i for i, want in enumerate(wants) if want.last is None]
    if len(together) < TOGETHER_FROM and all(len(shapes[wants[i]]) == 1 for i in together):
        together = []  # a read and a reservation would not save a statement
    alone = set(range(len(wanted))) - set(together)
    for i in sorted(alone):
        found[i] = await pick(wanted[i].ctx, wanted[i].demand, wanted[i].queue)
    later = await _decide_together(wanted, wants, together, found) if together else []
    for i in later:
        found[i] = await pick(wanted[i].ctx, wanted[i].demand, wanted[i].queue)
    return found


async def _decide_together(
    wanted: Sequence[Wanted], wants: list[Want], together: list[int], found: list[Picked | None]
) -> list[int]:
    """Decide and reserve the cases `together` on a board (into `found`); returns the ones left
    to `pick`, in order."""
    repo = wanted[together[0]].ctx.repo
    shapes = list(dict.fromkeys(wants[i] for i in together))
    k = SHOWN + min(len(together), EXTRA_READ)
    read = await repo.shortlists(shapes, k)
    if read is None:
        return together
    board = Board()
    lists, pools = {}, {}
    for want, (rows, pool) in zip(shapes, read, strict=True):
        for r in rows:
            if r["id"] not in board:
                board.add(
                    Agent(
                        r["id"],
                        Presence.ONLINE,
                        r["capacity"],
                        r["load"],
                        {},
                        {},
                        r["idle_since"],
                        r["last_assigned_at"],
                    )
                )
        ids = [r["id"] for r in rows]
        lists[want] = board.shortlist(Policy(want.policy), ids, complete=len(rows) < k)
        pools[want] = pool
    kept: dict[int, Decision] = {}  # decided, their agents locked by this transaction
    for _ in range(ROUNDS):
        decided = dict(kept)
        for i in together:
            if i in kept:
                continue
            decision = board.decide(lists[wants[i]], wanted[i].demand, wanted[i].ctx.now)
            if decision is not None:
                decided[i] = decision
        locked, took = await _reserve(repo, wanted, decided)
        if took:
            break
        # Nothing was taken. The cases before the first one whose agent another transaction
        # holds decide the same again (none of them chose a held agent): keep them and decide
        # the rest again, passing the held agents as busy.
        busy = {d.agent_id for d in decided.values() if d.agent_id is not None} - locked
        board.held |= busy
        for i in together:
            decision = decided.get(i)
            if decision is not None and decision.agent_id in busy:
                break
            if decision is not None:
                kept[i] = decision
        board.reset()
        for i, decision in kept.items():
            if decision.agent_id is not None:
                board.take(decision.agent_id, wanted[i].demand.weight, wanted[i].ctx.now)
    else:  # still some held: take what was kept, the rest is decided case by case
        decided = kept
        locked, took = await _reserve(repo, wanted, decided)
        if not took:
            return together
    for i, decision in decided.items():
        if decision.agent_id is not None:  # nobody eligible: stays None, as `pick` leaves it
            found[i] = Picked(decision, pools[wants[i]] or 0)
    return [i for i in together if i not in decided]


async def _reserve(
    repo: Any, wanted: Sequence[Wanted], decided: dict[int, Decision]
) -> tuple[set[str], bool]:
    """`reserve_together` for the decisions that chose an agent."""
    chosen = [_reservation(wanted[i], d) for i, d in decided.items() if d.agent_id is not None]
    return await repo.reserve_together(chosen) if chosen else (set(), True)


def _reservation(wanted: Wanted, decision: Decision) -> Reservation:
    demand = wanted.demand
    assert decision.agent_id is not None
    return Reservation(
        decision.agent_id,
        demand.weight,
        demand.language,
        wanted.queue.id if wanted.queue else None,
        json.dumps({n.skill: n.level for n in demand.needs}),
        wanted.ctx.now,
    )


async def pick(
    ctx: Ctx, demand: Demand, queue: Queue | None, *, only: str | None = None, cycle: int = 1
) -> Picked | None:
    """Choose by the queue's policy (the customer's last agent first) and reserve the capacity.

    Agents another transaction is changing are skipped (a consumer batch holds the agents it
    reserved until it commits). If all were skipped, a transaction holding no agent yet waits
    for them in order (no lock cycle is possible); one that holds some (later in a batch) asks a
    retry timer to offer the case again shortly instead, since nothing else might wake it. An
    offer to one agent (`only`, a drain for the agent being changed) waits for that agent.
    """
    policy = Policy(queue.policy) if queue else Policy.LONGEST_IDLE
    want = want_of(demand, queue, only=only)
    if only is not None:
        return await _offer(ctx, want, demand, policy)
    rows, got = await ctx.repo.candidates_reserving(want, ctx.now)
    decision = choose_agent(want.agents(rows), demand, policy=policy)
    if decision.agent_id is None:
        if got is not None:  # not expected: SQL filters as the domain does; give it back
            await ctx.repo.release(got, demand.weight, ctx.now)
        return None
    best = decision.agent_id
    if got is None and not ctx.repo.holds_agents:
        order = (best, *(a for a in decision.eligible if a != best))
        got = await _wait_for_first(ctx, order, demand.weight)
    if got is None:
        await _retry_soon(ctx, demand.case_id, queue, cycle)
        return None
    if got != best:
        decision = replace(decision, agent_id=got, reason=f"{decision.reason}; {best} was busy")
    return Picked(decision, rows[0].pool)


async def _offer(ctx: Ctx, want: Want, demand: Demand, policy: Policy) -> Picked | None:
    """Offer to one agent (a drain): wait for their row like a manual assign."""
    rows = await ctx.repo.candidates(want)
    decision = choose_agent(want.agents(rows), demand, policy=policy)
    best = decision.agent_id
    got = best if best and await ctx.repo.reserve(best, demand.weight, ctx.now) else None
    return Picked(decision, 1) if got else None


async def _wait_for_first(ctx: Ctx, order: tuple[str, ...], weight: int) -> str | None:
    """Reserve the first agent with room, waiting for each one's row (holding none, this
    transaction cannot be part of a lock cycle over agents)."""
    for agent_id in order:
        if await ctx.repo.reserve(agent_id, weight, ctx.now):
            return agent_id
    return None


async def _retry_soon(ctx: Ctx, ticket_id: str, queue: Queue | None, cycle: int) -> None:
    at = ctx.now + BUSY_RETRY
    row = {"kind": "retry", "metric": queue.id if queue else None, "cycle": cycle}
    await ctx.repo.add_timers(ticket_id, [row | {"due_at": at, "fire_at": at}])


async def announce(ctx: Ctx, ticket: Any, picked: Picked, *, previous: str | None) -> None:
    """Emit ticket.assigned explaining the decision (policy, candidates, why this agent)."""
    decision = picked.decision
    wait_ms = int((ctx.now - (ticket.queued_at or ticket.created_at)).total_seconds() * 1000)
    await ctx.ticket_event(
        TicketAssigned,
        ticket,
        agent_id=decision.agent_id,
        previous_agent_id=previous,
        wait_ms=max(wait_ms, 0),
        policy=str(decision.policy),
        reason=decision.reason,
        candidates_considered=picked.pool,
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
    await announce(ctx, ticket, Picked(decision, 1), previous=ticket.last_agent_id)
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
        if await try_assign(ctx, ticket.id, only=agent_id, ticket=ticket):
            taken += 1
        fresh = await ctx.repo.agent(agent_id)
        if fresh is None or fresh.load + 10 > fresh.capacity:
            break
    return taken


async def drain_all(ctx: Ctx, queue_ids: list[str] | None = None) -> int:
    """Try every waiting ticket (oldest highest-priority first) against all online agents."""
    taken = 0
    for ticket in await ctx.repo.waiting(queue_ids, limit=DRAIN_LIMIT):
        if await try_assign(ctx, ticket.id, ticket=ticket):
            taken += 1
    return taken
