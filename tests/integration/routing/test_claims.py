"""Atomic claims on real PostgreSQL: concurrent assignment never gives a case two owners or overfills."""

from __future__ import annotations

import asyncio
from collections import Counter
from functools import partial

from sqlalchemy import select

from routing.adapters import orm
from routing.bootstrap import RoutingService
from routing.domain.agents import weight_of
from routing.service_layer import actions, inbound
from routing.service_layer.assign import drain, try_assign
from routing.service_layer.context import Ctx
from routing.service_layer.errors import NoCapacity
from sbcontracts.events.common import Channel
from sbkit.db.retry import with_retry
from tests.unit.routing.conftest import add_agent, add_queue, attributed, in_ctx, outbox


async def _attempt(service: RoutingService, ticket_id: str) -> None:
    """One assignment attempt in its own transaction, retried like requests are if a deadlock victim."""
    await with_retry(lambda: in_ctx(service, lambda c: try_assign(c, ticket_id)))


async def test_many_concurrent_assign_attempts_give_one_owner_and_respect_capacity(
    pg_routing: RoutingService,
) -> None:
    await add_queue(pg_routing, "general")
    for i in range(4):
        await add_agent(pg_routing, f"a{i}", capacity=50, online=False)  # two chats each
    ids: list[str] = []
    for i in range(12):
        event = attributed("Where is my parcel?", customer=f"c{i}", channel=Channel.WEBCHAT)
        ticket_id = await in_ctx(pg_routing, partial(inbound.on_message, data=event.data))
        assert ticket_id is not None  # each customer's first message opens a case
        ids.append(ticket_id)
    await _all_online(pg_routing, 4, "a")
    await asyncio.gather(*(_attempt(pg_routing, t) for t in ids for _ in range(6)))
    await asyncio.gather(*(in_ctx(pg_routing, partial(drain, agent_id=f"a{i}")) for i in range(4)))

    async with pg_routing.runtime.uow() as uow:
        tickets = (await uow.session.execute(select(orm.tickets))).all()
        agents = {a.id: a for a in (await uow.session.execute(select(orm.agents))).all()}
    owned = Counter(t.agent_id for t in tickets if t.agent_id)
    assert sum(owned.values()) == 8  # 4 agents x 2 chats; the other 4 wait
    for agent_id, agent in agents.items():
        assert agent.load == owned[agent_id] * weight_of("webchat") <= agent.capacity
    assigned = await outbox(pg_routing, "ticket.assigned")
    assert sorted(e.data.ticket_id for e in assigned) == sorted(t.id for t in tickets if t.agent_id)


async def _put_online(ctx: Ctx, agent_id: str) -> None:
    await ctx.repo.put_agent(agent_id, {"presence": "online"}, exists=True)


async def _all_online(service: RoutingService, n: int, prefix: str) -> None:
    """Flip agents online without draining, so the backlog is left to the racing attempts."""
    for i in range(n):
        await in_ctx(service, partial(_put_online, agent_id=f"{prefix}{i}"))


async def test_concurrent_manual_assigns_of_one_case_leave_one_owner(
    pg_routing: RoutingService,
) -> None:
    await add_queue(pg_routing, "general")
    for i in range(6):
        await add_agent(pg_routing, f"m{i}", online=False)
    ticket_id = await in_ctx(pg_routing, lambda c: inbound.on_message(c, attributed("Hello").data))
    assert ticket_id is not None
    await _all_online(pg_routing, 6, "m")

    async def grab(agent_id: str) -> str:
        try:
            await with_retry(
                lambda: in_ctx(
                    pg_routing, lambda c: actions.assign(c, ticket_id, agent_id=agent_id)
                )
            )
        except NoCapacity:
            return "conflict"
        return "ok"

    outcomes = await asyncio.gather(*(grab(f"m{i}") for i in range(6)))
    assert "ok" in outcomes
    async with pg_routing.runtime.uow() as uow:
        agents = (await uow.session.execute(select(orm.agents))).all()
        [ticket] = (await uow.session.execute(select(orm.tickets))).all()
    loaded = [a.id for a in agents if a.load]
    assert loaded == [ticket.agent_id]  # exactly one agent carries the case, and it is the owner
