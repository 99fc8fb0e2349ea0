"""On real PostgreSQL a decision reads its candidates and reserves the best free agent in one
statement: the candidates as they were before the reservation, agents held elsewhere skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Float, bindparam, event, func, select
from sqlalchemy.exc import DBAPIError

from routing.adapters import orm
from routing.adapters.driver import Prepared, PreparedInsert
from routing.adapters.eligibility import Want
from routing.bootstrap import RoutingService
from routing.domain.agents import Agent, Policy
from routing.service_layer.context import Ctx
from tests.unit.routing.conftest import TENANT, add_agent, add_queue, in_ctx

WANT = Want(
    weight=10,
    policy=Policy.LONGEST_IDLE,
    queue_id="general",
    language="pl",
    skills=(("billing", 3),),
)


async def _agents(service: RoutingService) -> None:
    await add_queue(service, "general")
    await add_agent(service, "a-fit", skills={"billing": 4}, languages={"pl": 5})
    await add_agent(service, "b-fit", skills={"billing": 3}, languages={"pl": 2})
    await add_agent(service, "c-weak", skills={"billing": 2}, languages={"pl": 5})
    await add_agent(service, "d-no-pl", skills={"billing": 5}, languages={"en": 5})


async def test_one_statement_reads_the_candidates_and_reserves_the_best(
    pg_routing: RoutingService,
) -> None:
    await _agents(pg_routing)
    statements: list[str] = []
    now = datetime.now(UTC)

    async def decide(ctx: Ctx) -> tuple[list[Agent], str | None]:
        rows, got = await ctx.repo.candidates_reserving(WANT, now)
        return WANT.agents(rows), got

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    engine = pg_routing.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    agents, got = await in_ctx(pg_routing, decide)
    event.remove(engine, "before_cursor_execute", seen)

    assert len([s for s in statements if "agents" in s]) == 1
    assert [a.id for a in agents] == ["a-fit", "b-fit"]  # the same order the domain ranks
    assert agents[0].skills == {"billing": 4} and agents[0].languages == {"pl": 5}
    assert agents[0].load == 0  # read before the reservation
    assert got == "a-fit"
    loads = await in_ctx(pg_routing, lambda c: c.repo.agents())
    assert {a.id: a.load for a in loads} == {"a-fit": 10, "b-fit": 0, "c-weak": 0, "d-no-pl": 0}


async def test_an_agent_held_by_another_transaction_is_skipped_and_none_fits_reserves_nothing(
    pg_routing: RoutingService,
) -> None:
    await _agents(pg_routing)
    now = datetime.now(UTC)
    async with pg_routing.runtime.uow() as holder:
        first = Ctx(holder, TENANT, now=now, knobs=pg_routing.knobs)
        _, held = await first.repo.candidates_reserving(WANT, now)
        async with pg_routing.runtime.uow() as other:
            second = Ctx(other, TENANT, now=now, knobs=pg_routing.knobs)
            rows, got = await second.repo.candidates_reserving(WANT, now)
            assert (held, got) == ("a-fit", "b-fit")
            assert [r.id for r in rows] == ["a-fit", "b-fit"]  # the candidates hide no one
            assert second.repo.holds_agents
            nobody = Want(weight=10, policy=Policy.LONGEST_IDLE, language="xx")
            assert await second.repo.candidates_reserving(nobody, now) == ([], None)


async def test_within_a_transaction_the_decision_runs_on_the_driver_connection_alike(
    pg_routing: RoutingService,
) -> None:
    """After the transaction's first statement the decision bypasses SQLAlchemy's execution
    (compiled once, run on the session's asyncpg connection): same rows, same reservation."""
    await _agents(pg_routing)
    statements: list[str] = []
    now = datetime.now(UTC)

    async def decide(ctx: Ctx) -> tuple[list[Agent], str | None, int]:
        await ctx.repo.config_version()  # the transaction has begun on its connection
        rows, got = await ctx.repo.candidates_reserving(WANT, now)
        return WANT.agents(rows), got, rows[0].pool

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    engine = pg_routing.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    agents, got, pool = await in_ctx(pg_routing, decide)
    event.remove(engine, "before_cursor_execute", seen)

    assert not [s for s in statements if "agents" in s]  # not through SQLAlchemy
    assert [a.id for a in agents] == ["a-fit", "b-fit"]
    assert agents[0].skills == {"billing": 4} and agents[0].languages == {"pl": 5}
    assert agents[0].load == 0 and agents[0].idle_since is not None
    assert (got, pool) == ("a-fit", 4)
    loads = await in_ctx(pg_routing, lambda c: c.repo.agents())
    assert {a.id: a.load for a in loads} == {"a-fit": 10, "b-fit": 0, "c-weak": 0, "d-no-pl": 0}


async def test_a_decision_locks_only_the_agent_it_reserves(pg_routing: RoutingService) -> None:
    """Walking the eligible agents in order, a decision locks the first free one and no other:
    three transactions at once get the three fitting agents, none is skipped for nothing."""
    await _agents(pg_routing)
    await add_agent(pg_routing, "e-fit", skills={"billing": 3}, languages={"pl": 1})
    now = datetime.now(UTC)
    async with pg_routing.runtime.uow() as one, pg_routing.runtime.uow() as two:
        async with pg_routing.runtime.uow() as three:
            got = []
            for uow in (one, two, three):
                ctx = Ctx(uow, TENANT, now=now, knobs=pg_routing.knobs)
                await ctx.repo.config_version()
                got.append((await ctx.repo.candidates_reserving(WANT, now))[1])
            assert got == ["a-fit", "b-fit", "e-fit"]


async def test_a_failing_driver_statement_is_raised_as_sqlalchemy_raises_it(
    pg_routing: RoutingService,
) -> None:
    """Errors keep SQLAlchemy's shape (`DBAPIError` with the driver's error and SQLSTATE), so
    deadlock retries and the consumers' error handling see what they always saw."""
    failing = Prepared.of(select(func.sqrt(bindparam("x", type_=Float))))
    async with pg_routing.runtime.uow() as uow:
        await uow.session.execute(select(1))
        assert (await failing.fetch(uow.session, {"x": 4.0})) == [(2.0,)]
        with pytest.raises(DBAPIError) as raised:
            await failing.fetch(uow.session, {"x": -1.0})
    assert getattr(raised.value.orig, "sqlstate", None) == "2201F"  # invalid argument for power


async def test_a_batch_insert_on_the_driver_connection_stores_what_sqlalchemy_would(
    pg_routing: RoutingService,
) -> None:
    """One `unnest` insert per table: JSON documents, aware datetimes (of any offset), NULLs and
    booleans read back through SQLAlchemy exactly as given."""
    now = datetime.now(UTC)
    rows = [
        dict.fromkeys(c.name for c in orm.tickets.c)
        | {
            "id": f"t{n}",
            "tenant_id": TENANT,
            "customer_id": "c1",
            "kind": "case",
            "status": "new",
            "cycle": 1,
            "weight": 10,
            "channel": "email",
            "recipient": {"kind": "email", "value": f"c{n}@x.test"} if n else None,
            "category": "other",
            "sentiment": "neutral",
            "priority": "normal",
            "confidence": 0.5,
            "created_at": now,
            "updated_at": now,
            "cycle_started_at": now,
            "paused_ms": 0,
        }
        for n in range(3)
    ]
    # another offset: stored at its instant (asyncpg converts it; no bind processing applied)
    rows[1]["queued_at"] = now.astimezone(timezone(timedelta(hours=2))) - timedelta(minutes=5)
    tickets = PreparedInsert.of(orm.tickets, [c.name for c in orm.tickets.c])
    async with pg_routing.runtime.uow() as uow:
        await uow.session.execute(select(1))
        assert await tickets.insert(uow.session, rows)
        await uow.commit()
    async with pg_routing.runtime.uow() as uow:
        got = (await uow.session.execute(select(orm.tickets).order_by(orm.tickets.c.id))).all()
    assert [dict(r._mapping) for r in got] == rows


async def test_the_driver_connection_is_the_current_transactions_one(
    pg_routing: RoutingService,
) -> None:
    """The connection is remembered per transaction: after a commit the same session's next
    transaction (possibly on another pooled connection) runs its statements in that one."""
    txid = Prepared.of(select(func.txid_current()))
    async with pg_routing.runtime.sessionmaker() as session:
        for _ in range(2):
            async with session.begin():
                own = (await session.execute(select(func.txid_current()))).scalar_one()
                assert (await txid.fetch(session, {})) == [(own,)]
                assert (await txid.fetch(session, {})) == [(own,)]
