"""Consumer batches on real PostgreSQL: concurrent batches (one per partition) keep the claims atomic.

A batch holds the agents it reserved until it commits, so other batches skip them rather than
wait; a case that found every eligible agent held gets a retry timer, so no capacity stays idle.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from routing.adapters import orm, writes
from routing.bootstrap import RoutingService
from routing.domain.agents import weight_of
from routing.domain.classify import Classification
from routing.domain.model import Status
from routing.entrypoints.consumers import batch_handlers
from routing.entrypoints.worker import fire_due
from routing.service_layer.context import Ctx, batched
from routing.service_layer.inbound import _new_row
from sbcontracts.events.common import Channel
from tests.integration.routing.conftest import apply_concurrently
from tests.unit.routing.conftest import add_agent, add_queue, attributed, in_ctx, outbox


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

    await apply_concurrently(pg_routing, handle, batches)
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


async def test_a_batch_writes_its_new_tickets_once_unless_a_later_message_reads_one_of_them(
    pg_routing: RoutingService, sent: list[str]
) -> None:
    """A message joining a case opened before the batch reads and updates only that row, so the
    batch's waiting tickets stay for its one insert; a message joining a case opened earlier in
    the same batch writes them first (else it would not find its case)."""
    await add_queue(pg_routing, "general")
    await add_agent(pg_routing, "a1", capacity=1000)
    handle = batch_handlers(pg_routing.knobs)["messages"]
    async with pg_routing.runtime.uow() as uow:
        await handle(uow, [attributed("Where is my parcel?", customer="old")])
        await uow.commit()
    sent.clear()
    events = [
        attributed("Where is my parcel?", customer="c1"),
        attributed("Any news?", customer="old"),  # locks and updates the earlier case
        attributed("Where is my parcel?", customer="c2"),
    ]
    async with pg_routing.runtime.uow() as uow:
        await handle(uow, events)
        await uow.commit()
    assert sum('INSERT INTO "tickets"' in sql for sql in sent) == 1

    sent.clear()
    again = [
        attributed("Where is my parcel?", customer="c3"),
        attributed("Hello??", customer="c3", channel=Channel.WEBCHAT),  # joins c3's new case
        attributed("Where is my parcel?", customer="c4"),
    ]
    async with pg_routing.runtime.uow() as uow:
        await handle(uow, again)
        await uow.commit()
    assert sum('INSERT INTO "tickets"' in sql for sql in sent) == 2

    tickets, _ = await _rows(pg_routing)
    by_customer = Counter(t.customer_id for t in tickets)
    assert by_customer == {"old": 1, "c1": 1, "c2": 1, "c3": 1, "c4": 1}
    [c3] = [t for t in tickets if t.customer_id == "c3"]
    assert c3.channel == Channel.WEBCHAT  # the second message was appended to the new case
    async with pg_routing.runtime.uow() as uow:
        history = (await uow.session.execute(select(orm.ticket_messages))).all()
    assert Counter(m.ticket_id for m in history)[c3.id] == 2
    assert len(history) == 7


async def test_a_waiting_ticket_read_or_changed_by_id_is_written_first(
    pg_routing: RoutingService,
) -> None:
    """Reading, updating or claiming one ticket writes the batch's waiting tickets first only
    when that ticket is one of them; another ticket's statement leaves them waiting."""
    await add_queue(pg_routing, "general")
    old = await in_ctx(pg_routing, lambda ctx: ctx.repo.add_ticket(_ticket(ctx, "old")))

    async def use(ctx: Ctx) -> tuple[Any, ...]:
        async with batched(ctx.uow):
            new = await ctx.repo.add_ticket(_ticket(ctx, "new"))
            other = await ctx.repo.update_ticket(old.id, channel="webchat")
            still_waiting = writes.pending(ctx.uow.session)
            assert still_waiting is not None and new.id in still_waiting.ticket_ids
            found = await ctx.repo.ticket(new.id, lock=True)  # writes it first
            assert not still_waiting.ticket_ids
            claimed = await ctx.repo.claim(new.id, "a1", ctx.now)
            changed = await ctx.repo.update_ticket(new.id, subject="s")
        return other, found, claimed, changed

    other, found, claimed, changed = await in_ctx(pg_routing, use)
    assert other.channel == "webchat"
    assert found is not None and found.customer_id == "new"
    assert claimed
    assert changed.agent_id == "a1" and changed.subject == "s"


async def test_in_a_batch_a_ticket_is_read_and_changed_on_the_driver_as_the_session_would(
    pg_routing: RoutingService, sent: list[str]
) -> None:
    """Inside a batch the ticket read (locked or not) and update run on the driver connection
    (a fifth of the session's client CPU); the rows have the session's values: JSON documents,
    aware UTC datetimes (given at another offset), statuses, NULLs."""
    await add_queue(pg_routing, "general")
    old = await in_ctx(pg_routing, lambda ctx: ctx.repo.add_ticket(_ticket(ctx, "old")))
    later = datetime.now(UTC).astimezone(timezone(timedelta(hours=-5))) + timedelta(minutes=1)
    changes: dict[str, Any] = {
        "channel": "webchat",
        "recipient": {"kind": "email", "value": "a@x.test", "tags": [1, None]},
        "status": Status.OPEN,
        "awaiting_since": later,
        "updated_at": later,
        "queue_id": None,
    }

    async def use(ctx: Ctx) -> tuple[Any, ...]:
        await ctx.uow.session.execute(select(1))  # begun, as by a batch's inbox claim
        async with batched(ctx.uow):
            before = await ctx.repo.ticket(old.id)
            locked = await ctx.repo.ticket(old.id, lock=True)
            changed = await ctx.repo.update_ticket(old.id, **changes)
            missing = await ctx.repo.update_ticket("nope", channel="sms")
        return before, locked, changed, missing

    before, locked, changed, missing = await in_ctx(pg_routing, use)
    on_driver = [sql for sql in sent if "FROM tickets" in sql or "UPDATE tickets" in sql]
    assert len(on_driver) == 4
    assert missing is None
    async with pg_routing.runtime.uow() as uow:
        stored = (await uow.session.execute(select(orm.tickets))).one()
    assert changed._asdict() == dict(stored._mapping)
    assert stored.recipient == changes["recipient"] and stored.awaiting_since == later
    assert before._asdict() == locked._asdict() == dict(old._mapping)


async def test_in_a_batch_timers_are_cancelled_on_the_driver_as_the_session_would(
    pg_routing: RoutingService, pg_twin: RoutingService, sent: list[str]
) -> None:
    """A batch cancels a ticket's pending timers of some kinds (of one metric, or all) on the
    driver connection; outside a batch through the session: the same timers end done."""
    at = datetime.now(UTC) + timedelta(hours=1)
    timers = [
        {"kind": kind, "metric": metric, "cycle": 1, "due_at": at, "fire_at": at}
        for kind in ("sla_warning", "sla_breached", "retry")
        for metric in ("first_response", "resolution")
    ]

    async def cancel(ctx: Ctx) -> None:
        await ctx.uow.session.execute(select(1))  # begun, as by a batch's inbox claim
        for ticket in ("t1", "t2"):
            await ctx.repo.add_timers(ticket, timers)
        await ctx.repo.cancel_timers("t1", ("sla_warning", "retry"), "resolution")
        await ctx.repo.cancel_timers("t2", ("sla_breached",))
        await ctx.repo.cancel_timers("t2", ())

    async def in_batch(ctx: Ctx) -> None:
        async with batched(ctx.uow):
            await cancel(ctx)

    await in_ctx(pg_routing, in_batch)
    assert sum(sql.startswith("UPDATE timers") for sql in sent) == 3
    await in_ctx(pg_twin, cancel)

    async def done(service: RoutingService) -> list[tuple[Any, ...]]:
        async with service.runtime.uow() as uow:
            t = orm.timers.c
            q = select(t.ticket_id, t.kind, t.metric, t.done).order_by(
                t.ticket_id, t.kind, t.metric
            )
            return [tuple(r) for r in (await uow.session.execute(q)).all()]

    cancelled = [r[:3] for r in await done(pg_twin) if r[3]]
    assert cancelled == [
        ("t1", "retry", "resolution"),
        ("t1", "sla_warning", "resolution"),
        ("t2", "sla_breached", "first_response"),
        ("t2", "sla_breached", "resolution"),
    ]
    assert await done(pg_routing) == await done(pg_twin)


def _ticket(ctx: Ctx, customer: str) -> dict[str, Any]:
    found = Classification("other", "neutral", "normal", None, 1.0)
    return _new_row(ctx, customer, "email", found) | {"queue_id": "general"}


async def test_a_batch_writes_its_rows_and_its_events_in_one_statement_in_order(
    pg_routing: RoutingService, sent: list[str]
) -> None:
    """At the end of a batch its new tickets, messages, timers and outbox rows are one
    statement; the events keep the order they were emitted in (the relay publishes by id)."""
    await add_queue(pg_routing, "general", sla={"normal": {"first_response_s": 60}})
    await add_agent(pg_routing, "a1", capacity=1000)
    sent.clear()
    events = [attributed("Where is my parcel?", customer=f"c{n}") for n in range(3)]
    async with pg_routing.runtime.uow() as uow:
        await batch_handlers(pg_routing.knobs)["messages"](uow, events)
        await uow.commit()

    [written] = [sql for sql in sent if "INSERT INTO" in sql]
    for table in ("tickets", "ticket_messages", "timers", "outbox"):
        assert f'INSERT INTO "{table}"' in written
    tickets, _ = await _rows(pg_routing)
    assert len(tickets) == 3 and {t.agent_id for t in tickets} == {"a1"}
    async with pg_routing.runtime.uow() as uow:
        assert len((await uow.session.execute(select(orm.ticket_messages))).all()) == 3
        assert len((await uow.session.execute(select(orm.timers))).all()) == 6  # warn, breach
    emitted = await outbox(pg_routing)
    order = [e.type.rsplit(".", 1)[-1] for e in emitted if e.subject == tickets[0].id]
    assert order == ["opened", "classified", "message_added", "assigned"]
    assert [e.data.customer_id for e in emitted if e.type.endswith("opened")] == [
        "c0",
        "c1",
        "c2",
    ]


async def test_a_batch_counts_a_queues_pool_once_and_every_decision_reports_it(
    pg_routing: RoutingService, sent: list[str]
) -> None:
    """The first decision of a batch for a queue counts its pool (online agents serving it);
    the batch's later decisions for that queue reuse the count; the next batch counts again.
    (Each case here is another shape — its channel's units differ — and a batch has two, so
    each is decided by its own statement, not together; from three on they would be.)"""
    await add_queue(pg_routing, "general")
    for i in range(3):
        await add_agent(pg_routing, f"a{i}", capacity=1000)
    await add_agent(pg_routing, "away", online=False)
    handle = batch_handlers(pg_routing.knobs)["messages"]
    channels = (Channel.EMAIL, Channel.WEBCHAT, Channel.SMS, Channel.VOICE)  # 10, 25, 20, 100

    async def batch(n: int, tag: str) -> list[str]:
        sent.clear()
        events = [
            attributed("Where is my parcel?", customer=f"{tag}{i}", channel=channels[i])
            for i in range(n)
        ]
        async with pg_routing.runtime.uow() as uow:
            await handle(uow, events)
            await uow.commit()
        return [sql for sql in sent if sql.startswith("WITH ranked")]

    decisions = await batch(2, "c")
    assert len(decisions) == 2
    assert ["count(*)" in sql for sql in decisions] == [True, False]
    await add_agent(pg_routing, "a3", capacity=1000)  # the pool grows between batches
    assert ["count(*)" in sql for sql in await batch(2, "d")] == [True, False]
    assert not await batch(4, "e")  # four shapes: decided together, one read of the agents

    assigned = await outbox(pg_routing, "ticket.assigned")
    by_customer = {e.data.customer_id: e.data.candidates_considered for e in assigned}
    assert by_customer == {"c0": 3, "c1": 3, "d0": 4, "d1": 4} | {f"e{i}": 4 for i in range(4)}
