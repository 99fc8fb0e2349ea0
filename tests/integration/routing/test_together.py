"""A consumer batch's new cases decided together on real PostgreSQL (`assign.pick_together`):
one read of the agents per repeated demand shape, the decisions made one after another on a
board, one statement reserving them all — with the agents, candidates and reasons a decision per
case would give, and the claims as atomic under concurrent batches."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from routing.adapters import orm
from routing.bootstrap import RoutingService
from routing.entrypoints.consumers import batch_handlers, handlers
from routing.entrypoints.worker import fire_due
from routing.service_layer import assign
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel
from tests.integration.routing.conftest import apply_concurrently
from tests.unit.routing.conftest import add_agent, add_queue, attributed, outbox

T0 = datetime.now(UTC) - timedelta(hours=1)


async def _setup(service: RoutingService) -> None:
    """Three queues, one per policy, and agents whose ranks, rooms and skills differ."""
    await add_queue(
        service,
        "pl",
        position=1,
        policy="least_loaded",
        filters=[{"languages": ["pl"]}],
        skills=[{"skill": "billing", "level": 2}],
    )
    await add_queue(
        service, "en", position=2, policy="round_robin", filters=[{"languages": ["en"]}]
    )
    await add_queue(service, "rest", position=3)  # longest idle, anything else
    speaks = ({"pl": 5}, {"en": 5}, {"pl": 3, "en": 3}, {"ro": 4, "en": 2})
    for i in range(10):
        await add_agent(
            service,
            f"a{i}",
            capacity=(30, 40, 50, 100)[i % 4],
            load=(0, 10, 0, 20, 10)[i % 5],
            languages=speaks[i % 4],
            skills={"billing": i % 4},
            idle_since=T0 + timedelta(minutes=(7 * i) % 10),
            last_assigned_at=T0 - timedelta(minutes=(3 * i) % 10),
        )


def _messages() -> list[CloudEvent[Any]]:
    """Every shape of every queue (email and chat units) four times, in a shuffled order, more
    than the room of some, and one shape once."""
    shapes = [(lang, ch) for lang in ("pl", "en", "ro") for ch in (Channel.EMAIL, Channel.WEBCHAT)]
    order = shapes * 4
    random.Random(5).shuffle(order)
    order.insert(9, ("en", Channel.SMS))  # a shape asked once: decided on the board too
    return [
        attributed("Hello", customer=f"c{n}", channel=channel, language=language)
        for n, (language, channel) in enumerate(order)
    ]


async def _decisions(service: RoutingService) -> dict[str, tuple[Any, ...]]:
    """Each customer's ticket.assigned explanation."""
    return {
        e.data.customer_id: (
            e.data.agent_id,
            e.data.policy,
            e.data.reason,
            tuple(e.data.eligible_agents),
            e.data.candidates_considered,
        )
        for e in await outbox(service, "ticket.assigned")
    }


async def _loads(service: RoutingService) -> dict[str, int]:
    async with service.runtime.uow() as uow:
        rows = (await uow.session.execute(select(orm.agents.c.id, orm.agents.c.load))).all()
    return {r.id: r.load for r in rows}


async def test_deciding_together_gives_each_case_the_agent_and_explanation_one_by_one_gives(
    pg_routing: RoutingService, pg_twin: RoutingService, sent: list[str]
) -> None:
    for service in (pg_routing, pg_twin):
        await _setup(service)
    events = _messages()

    one = handlers(pg_routing.knobs)["messages"]
    for event in events:  # a decision per case, in order (the kit's one-at-a-time replay)
        async with pg_routing.runtime.uow() as uow:
            await one(uow, event)
            await uow.commit()
    sent.clear()
    async with pg_twin.runtime.uow() as uow:
        await batch_handlers(pg_twin.knobs)["messages"](uow, events)
        await uow.commit()

    assert sum(sql.startswith("SELECT 0 AS part") for sql in sent) == 1  # one read of agents
    assert not [sql for sql in sent if sql.startswith("WITH ranked")]  # no decision per case
    expected, got = await _decisions(pg_routing), await _decisions(pg_twin)
    assert len(expected) > 12  # most were assigned; some found no room
    assert any("busy" not in d[2] and len(d[3]) > 1 for d in expected.values())
    assert got == expected
    assert await _loads(pg_twin) == await _loads(pg_routing)


async def test_cases_of_distinct_shapes_are_decided_together_from_three_on_as_one_by_one(
    pg_routing: RoutingService, pg_twin: RoutingService, sent: list[str]
) -> None:
    """No shape repeats: three cases or more are still decided on the board (one read, one
    reservation instead of a statement each) with what a decision per case gives; two are
    decided by a statement each (two statements either way)."""
    for service in (pg_routing, pg_twin):
        await _setup(service)
    shapes = [("pl", Channel.EMAIL), ("en", Channel.WEBCHAT), ("ro", Channel.EMAIL)]
    shapes += [("en", Channel.SMS), ("pl", Channel.WEBCHAT)]
    batches = [
        [
            attributed("Hello", customer=f"{tag}{n}", channel=channel, language=language)
            for n, (language, channel) in enumerate(chosen)
        ]
        for tag, chosen in (("c", shapes), ("d", shapes[:2]), ("e", shapes[2:]))
    ]
    one = handlers(pg_routing.knobs)["messages"]
    for event in [e for events in batches for e in events]:
        async with pg_routing.runtime.uow() as uow:
            await one(uow, event)
            await uow.commit()
    read = []
    for events in batches:
        sent.clear()
        async with pg_twin.runtime.uow() as uow:
            await batch_handlers(pg_twin.knobs)["messages"](uow, events)
            await uow.commit()
        together = sum(sql.startswith("SELECT 0 AS part") for sql in sent)
        read.append((together, sum(sql.startswith("WITH ranked") for sql in sent)))
    assert read == [(1, 0), (0, 2), (1, 0)]
    expected, got = await _decisions(pg_routing), await _decisions(pg_twin)
    assert len(expected) > 6  # most were assigned
    assert got == expected
    assert await _loads(pg_twin) == await _loads(pg_routing)


async def test_an_agent_another_transaction_holds_is_passed_as_busy_and_never_overfilled(
    pg_routing: RoutingService, sent: list[str]
) -> None:
    """The board's reservation skips an agent another batch holds (all or none: the cases are
    decided again without that agent, each naming it busy), like the skip-locked walk."""
    await add_queue(pg_routing, "general")
    for i in range(3):
        await add_agent(pg_routing, f"a{i}", capacity=1000, idle_since=T0 + timedelta(minutes=i))
    handle = batch_handlers(pg_routing.knobs)["messages"]
    events = [attributed("Hello", customer=f"c{n}") for n in range(4)]
    engine = pg_routing.runtime.engine
    async with engine.connect() as other:
        await other.execute(text("SELECT 1 FROM agents WHERE id = 'a0' FOR UPDATE"))
        async with pg_routing.runtime.uow() as uow:
            await handle(uow, events)
            await uow.commit()
        await other.rollback()

    reservations = [sql for sql in sent if "FOR UPDATE OF a SKIP LOCKED" in sql]
    assert len(reservations) == 2  # none taken (a0 held), then all without a0
    assert not [sql for sql in sent if sql.startswith("WITH ranked")]  # not one by one
    decisions = await _decisions(pg_routing)
    assert [decisions[f"c{n}"][0] for n in range(4)] == ["a1", "a2", "a1", "a2"]
    assert {d[2] for d in decisions.values()} == {"best by longest_idle; a0 was busy"}
    assert decisions["c0"][3] == ("a0", "a1", "a2")  # as read: the busy one first
    assert await _loads(pg_routing) == {"a0": 0, "a1": 20, "a2": 20}


async def test_concurrent_batches_deciding_together_keep_every_invariant(
    pg_routing: RoutingService,
) -> None:
    """Six batches at once (one per partition), each deciding its repeated shapes together:
    one owner per case, loads equal to the units owned and within capacity, every
    ticket.assigned names its case's owner, and after the busy retries nobody eligible with
    room is left while a case of theirs waits."""
    await add_queue(pg_routing, "pl", position=1, filters=[{"languages": ["pl"]}])
    await add_queue(pg_routing, "en", position=2, policy="least_loaded")
    for i in range(8):
        languages = {"pl": 5} if i % 2 else {"pl": 3, "en": 4}
        await add_agent(pg_routing, f"a{i}", capacity=(50, 75, 100)[i % 3], languages=languages)
    handle = batch_handlers(pg_routing.knobs)["messages"]
    rnd = random.Random(11)
    batches = [
        [
            attributed(
                "Hello",
                customer=f"c{b}-{n}",
                channel=rnd.choice((Channel.EMAIL, Channel.WEBCHAT)),
                language=rnd.choice(("pl", "en")),
            )
            for n in range(12)
        ]
        for b in range(6)
    ]

    await apply_concurrently(pg_routing, handle, batches)
    for seconds in (5, 10, 15):  # the busy cases' retries
        later = datetime.now(UTC) + timedelta(seconds=seconds)
        await fire_due(pg_routing.runtime, pg_routing.knobs, now=later)

    async with pg_routing.runtime.uow() as uow:
        tickets = list((await uow.session.execute(select(orm.tickets))).all())
        agents = {a.id: a for a in (await uow.session.execute(select(orm.agents))).all()}
    assert len(tickets) == 72
    units: Counter[str] = Counter()
    for t in tickets:
        if t.agent_id:
            units[t.agent_id] += t.weight
    for agent_id, agent in agents.items():
        assert agent.load == units[agent_id] <= agent.capacity
    owners = {e.data.ticket_id: e.data.agent_id for e in await outbox(pg_routing, "assigned")}
    assert owners == {t.id: t.agent_id for t in tickets if t.agent_id}
    for t in tickets:
        if t.agent_id is None:  # waiting: nobody who could take it has room
            for agent in agents.values():
                speaks = agent.languages.get(t.language, 0) > 0
                assert not (speaks and agent.load + t.weight <= agent.capacity), (t, agent)


@pytest.mark.parametrize("rounds", [8, 1])
async def test_cases_before_the_first_busy_choice_are_kept_and_the_rest_decided_again(
    pg_routing: RoutingService, sent: list[str], monkeypatch: pytest.MonkeyPatch, rounds: int
) -> None:
    """The second best agent is held: the first case keeps the best, the others are decided
    again passing the held one as busy — on the board (a second reservation), or when the
    attempts run out by a decision statement each, with the same result."""
    monkeypatch.setattr(assign, "ROUNDS", rounds)
    await add_queue(pg_routing, "general")
    for i in range(3):
        await add_agent(pg_routing, f"a{i}", capacity=1000, idle_since=T0 + timedelta(minutes=i))
    events = [attributed("Hello", customer=f"c{n}") for n in range(4)]
    async with pg_routing.runtime.engine.connect() as other:
        await other.execute(text("SELECT 1 FROM agents WHERE id = 'a1' FOR UPDATE"))
        async with pg_routing.runtime.uow() as uow:
            await batch_handlers(pg_routing.knobs)["messages"](uow, events)
            await uow.commit()
        await other.rollback()

    one_by_one = [sql for sql in sent if sql.startswith("WITH ranked")]
    assert len(one_by_one) == (0 if rounds > 1 else 3)
    decisions = await _decisions(pg_routing)
    busy = "best by longest_idle; a1 was busy"
    assert [decisions[f"c{n}"][:3:2] for n in range(4)] == [
        ("a0", "best by longest_idle"),
        ("a2", busy),
        ("a0", busy),
        ("a2", busy),
    ]
    assert await _loads(pg_routing) == {"a0": 20, "a1": 0, "a2": 20}
