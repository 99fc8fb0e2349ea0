"""A consumer batch writes its new tickets, messages and timers with one insert per table, and the
rows it keeps in memory until then are the rows the database then holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from routing.adapters import orm
from routing.bootstrap import RoutingService
from routing.entrypoints.consumers import batch_handlers
from routing.service_layer import inbound
from routing.service_layer.context import Ctx, batched
from sbcontracts.events.common import Channel
from tests.unit.routing.conftest import TENANT, add_agent, add_queue, attributed, outbox, tickets

SLA = {"normal": {"first_response_s": 3600, "resolution_s": 7200}}


def _inserts(service: RoutingService) -> list[str]:
    """The INSERT statements the service sends from now on (an executemany counts once)."""
    seen: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            seen.append(statement.split("(", 1)[0].split()[-1].strip('"'))

    event.listen(service.runtime.engine.sync_engine, "before_cursor_execute", on_execute)
    return seen


async def test_a_batch_of_new_cases_writes_one_insert_per_table(routing: RoutingService) -> None:
    await add_queue(routing, "general", sla=SLA)
    await add_agent(routing, "a1", capacity=1000)
    events = [attributed("Where is my parcel?", customer=f"c{n}") for n in range(6)]
    inserts = _inserts(routing)
    async with routing.runtime.uow() as uow:
        await batch_handlers(routing.knobs)["messages"](uow, events)
        await uow.commit()

    assert sorted(inserts) == ["outbox", "ticket_messages", "tickets", "timers"]
    rows = await tickets(routing)
    assert len(rows) == 6
    assert {t.agent_id for t in rows} == {"a1"}
    assert len(await outbox(routing, "ticket.assigned")) == 6


async def test_appending_to_an_open_case_mid_batch_leaves_the_waiting_tickets_for_the_end(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", sla=SLA)
    await add_agent(routing, "a1", capacity=1000)
    handle = batch_handlers(routing.knobs)["messages"]
    async with routing.runtime.uow() as uow:
        await handle(uow, [attributed("Where is my parcel?", customer="c9")])
        await uow.commit()
    events = [
        attributed("Where is my parcel?", customer="c1"),
        attributed("Any news?", customer="c9"),  # locks and updates c9's ticket
        attributed("Where is my parcel?", customer="c2"),
    ]
    inserts = _inserts(routing)
    async with routing.runtime.uow() as uow:
        await handle(uow, events)
        await uow.commit()

    # c9's ticket is not among the waiting ones: reading and updating it writes none of them
    assert inserts.count("tickets") == 1
    assert inserts.count("ticket_messages") == inserts.count("timers") == 1
    assert len(await tickets(routing)) == 3


async def test_a_second_message_of_a_customer_in_the_batch_joins_the_case_the_first_opened(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general")
    first = attributed("Where is my parcel?", customer="c1")
    again = attributed("Hello??", customer="c1", channel=Channel.WEBCHAT)
    async with routing.runtime.uow() as uow:
        await batch_handlers(routing.knobs)["messages"](uow, [first, again])
        await uow.commit()

    [ticket] = await tickets(routing)
    assert ticket.channel == Channel.WEBCHAT  # the second message was appended to it
    async with routing.runtime.uow() as uow:
        history = (await uow.session.execute(select(orm.ticket_messages))).all()
    assert sorted(m.message_id for m in history) == sorted(
        e.data.message.message_id for e in (first, again)
    )


async def test_the_ticket_kept_in_memory_is_the_row_the_database_then_holds(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", sla=SLA)
    await add_agent(routing, "a1")
    message = attributed("Paczka uszkodzona, gdzie jest zamówienie?", customer="c9")
    now = datetime.now(UTC) - timedelta(seconds=3)
    async with routing.runtime.uow() as uow:
        ctx = Ctx(uow, TENANT, now=now, knobs=routing.knobs)
        async with batched(uow):
            ticket_id = await inbound.on_message(ctx, message.data)
            kept = await ctx.repo.add_ticket({"customer_id": "c10"} | _minimal(now))
        await uow.commit()
    async with routing.runtime.uow() as uow:
        ctx = Ctx(uow, TENANT, knobs=routing.knobs)
        stored = await ctx.repo.ticket(str(kept.id))
        assert await ctx.repo.ticket(str(ticket_id)) is not None
    assert stored is not None
    assert vars(kept) == dict(stored._mapping)


async def test_a_failing_batch_writes_none_of_its_rows(routing: RoutingService) -> None:
    await add_queue(routing, "general", sla=SLA)
    events = [attributed("Where is my parcel?", customer=f"c{n}") for n in range(3)]
    with pytest.raises(RuntimeError):
        async with routing.runtime.uow() as uow:
            async with batched(uow):
                for e in events:
                    await inbound.on_message(Ctx(uow, TENANT, knobs=routing.knobs), e.data)
                raise RuntimeError("the batch fails before it ends")
    assert await tickets(routing) == []
    assert await outbox(routing) == []


def _minimal(now: datetime) -> dict[str, Any]:
    return {
        "status": "new",
        "cycle": 1,
        "kind": "case",
        "weight": 10,
        "channel": "email",
        "category": "other",
        "sentiment": "neutral",
        "priority": "normal",
        "confidence": 1.0,
        "created_at": now,
        "updated_at": now,
        "cycle_started_at": now,
        "paused_ms": 0,
    }
