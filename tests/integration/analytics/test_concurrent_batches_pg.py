"""Concurrent batches of one tenant (one per partition, as the Kafka consumer runs them) change
the same day and month rollup rows: they must wait for each other, never deadlock.

Each batch opens cases in queues alternating in opposite orders, so rows written event by
event would be locked in opposite orders by the two transactions (what dead-lettered good
ticket records in the poison test); written once per transaction in key order they cannot.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from analytics.adapters.orm import components
from sbcontracts.catalog import encode
from sbcontracts.envelope import new_event
from sbcontracts.events.routing import TicketOpened
from sbcontracts.topics import TICKETS
from sbkit.bus.ports import Record
from tests.unit.analytics.conftest import T0, TENANT, Api

CASES = 40
ROUNDS = 4


def _batch(side: str, queues: tuple[str, str], round_: int) -> list[Record]:
    records = []
    for i in range(CASES):
        data = TicketOpened(
            ticket_id=f"{side}-{round_}-{i}",
            customer_id=f"{side}-{round_}-c{i}",
            queue=queues[i % 2],
            occurred_at=T0 + timedelta(minutes=i % 15),
        )
        event = new_event(data, tenant_id=TENANT, source="test")
        records.append(Record(TICKETS.name, 0, i, f"{TENANT}:{side}", encode(event)))
    return records


async def test_two_partitions_batches_change_shared_rollups_without_deadlock(
    pg_api: Api,
) -> None:
    runtime = pg_api.service.runtime
    (sub,) = [s for s in runtime._subscriptions if TICKETS.name in s.topics]
    assert sub.batch_handler is not None
    for r in range(ROUNDS):
        await asyncio.gather(
            sub.batch_handler(_batch("a", ("q1", "q2"), r)),
            sub.batch_handler(_batch("b", ("q2", "q1"), r)),
        )
    async with runtime.uow() as uow:
        opened = await uow.session.scalar(
            select(func.sum(components.c.value)).where(
                components.c.tenant_id == TENANT, components.c.name == "opened"
            )
        )
    assert opened == 2 * CASES * ROUNDS
