"""Consumer batches on real PostgreSQL: concurrent batches (one per partition) keep the claims atomic.

A batch holds the agents it reserved until it commits, so other batches skip them rather than
wait; a case that found every eligible agent held gets a retry timer, so no capacity stays idle.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from routing.adapters import orm
from routing.bootstrap import RoutingService
from routing.domain.agents import weight_of
from routing.entrypoints.consumers import batch_handlers
from routing.entrypoints.worker import fire_due
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel
from sbkit.db.retry import with_retry
from tests.unit.routing.conftest import add_agent, add_queue, attributed, outbox


async def _rows(service: RoutingService) -> tuple[list[Any], dict[str, Any]]:
    async with service.runtime.uow() as uow:
        tickets = list((await uow.session.execute(select(orm.tickets))).all())
        agents = {a.id: a for a in (await uow.session.execute(select(orm.agents))).all()}
    return tickets, agents


async def test_concurrent_batches_give_one_owner_never_overfill_and_leave_no_idle_capacity(
    pg_routing: RoutingService,
) -> None:
    await add_queue(pg_routing, "general")
    for i in range(4):
        await add_agent(pg_routing, f"b{i}", capacity=50)  # two chats each, online
    handle = batch_handlers(pg_routing.knobs)["messages"]
    batches = [
        [
            attributed("Where is my parcel?", customer=f"c{b}-{n}", channel=Channel.WEBCHAT)
            for n in range(5)
        ]
        for b in range(4)
    ]

    async def apply(events: list[CloudEvent[Any]]) -> None:
        async with pg_routing.runtime.uow() as uow:
            await handle(uow, events)
            await uow.commit()

    await asyncio.gather(*(with_retry(lambda e=events: apply(e)) for events in batches))
    later = datetime.now(UTC) + timedelta(seconds=5)
    await fire_due(pg_routing.runtime, pg_routing.knobs, now=later)  # busy cases retried

    tickets, agents = await _rows(pg_routing)
    assert len(tickets) == 20
    owned = Counter(t.agent_id for t in tickets if t.agent_id)
    assert sum(owned.values()) == 8  # every unit of capacity in use, the other 12 wait
    for agent_id, agent in agents.items():
        assert agent.load == owned[agent_id] * weight_of("webchat") == agent.capacity
    assigned = await outbox(pg_routing, "ticket.assigned")
    assert sorted(e.data.ticket_id for e in assigned) == sorted(t.id for t in tickets if t.agent_id)
