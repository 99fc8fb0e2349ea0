"""On PostgreSQL a consumer batch reads its messages' facts (the customers' cases, last agents,
the message ids already held, the configuration version) in one statement: the same answers as
the separate reads it replaces, another tenant's rows invisible. And the timer poller's read of
due timers uses the index of pending timers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, text

from routing.adapters.history import due_timers
from routing.bootstrap import RoutingService
from routing.domain.classify import Classification
from routing.service_layer.context import Ctx
from routing.service_layer.inbound import _new_row
from tests.unit.routing.conftest import in_ctx

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _row(ctx: Ctx, customer: str, status: str, agent: str | None, age_s: int) -> dict[str, Any]:
    found = Classification("other", "neutral", "normal", None, 1.0)
    at = NOW - timedelta(seconds=age_s)
    return _new_row(ctx, customer, "email", found) | {
        "status": status,
        "last_agent_id": agent,
        "updated_at": at,
        "resolved_at": at if status == "resolved" else None,
    }


async def _fixture(service: RoutingService) -> None:
    async def use(ctx: Ctx) -> None:
        for customer, status, agent, age in [
            ("c1", "open", "a1", 50),
            ("c1", "closed", "a2", 10),  # newest with an agent: c1's last agent, not a case
            ("c2", "resolved", None, 30),
            ("c2", "pending", "a3", 40),
            ("c3", "closed", None, 5),
        ]:
            ticket = await ctx.repo.add_ticket(_row(ctx, customer, status, agent, age))
            await ctx.repo.add_message(
                ticket.id,
                message_id=f"m-{customer}-{status}",
                direction="inbound",
                text="t",
                at=NOW,
            )
        await ctx.repo.bump_config()
        await ctx.repo.bump_config()

    await in_ctx(service, use, now=NOW)

    async def other(ctx: Ctx) -> None:  # another tenant's customer of the same id
        ticket = await ctx.repo.add_ticket(_row(ctx, "c1", "open", "z9", 1))
        await ctx.repo.add_message(
            ticket.id, message_id="m-x", direction="inbound", text="t", at=NOW
        )

    await in_ctx(service, other, now=NOW, tenant="other")


async def test_one_statement_reads_what_the_separate_reads_do(pg_routing: RoutingService) -> None:
    await _fixture(pg_routing)
    customers = {"c1", "c2", "c3", "c4"}
    messages = ["m-c1-open", "m-c2-resolved", "m-x", "m-new"]

    async def both(ctx: Ctx) -> tuple[Any, ...]:
        await ctx.repo.known_messages(["begin"])  # the transaction has begun on its connection
        found = await ctx.repo.facts(customers, messages)
        version = await ctx.repo.config_version()  # the one read with the facts
        cases = await ctx.repo.customer_cases(customers)
        return (
            found,
            version,
            cases,
            await ctx.repo.last_agents(customers),
            await ctx.repo.known_messages(messages),
            await ctx.repo.config_version(),  # read again: the same
        )

    found, version, cases, last, known, again = await in_ctx(pg_routing, both)
    assert found is not None
    columns = ("id", "customer_id", "status", "updated_at", "resolved_at")
    assert sorted(tuple(getattr(c, k) for k in columns) for c in found.cases) == sorted(
        tuple(getattr(c, k) for k in columns) for c in cases
    )
    assert {c.customer_id for c in found.cases} == {"c1", "c2"}
    assert found.last_agents == last == {"c1": "a2", "c2": "a3"}
    assert found.known == known == {"m-c1-open", "m-c2-resolved"}
    assert version == again == 2


async def test_a_version_read_with_the_facts_is_not_used_after_a_change(
    pg_routing: RoutingService,
) -> None:
    await _fixture(pg_routing)

    async def use(ctx: Ctx) -> int:
        await ctx.repo.known_messages(["begin"])
        assert await ctx.repo.facts({"c1"}, []) is not None
        await ctx.repo.bump_config()
        return await ctx.repo.config_version()

    assert await in_ctx(pg_routing, use) == 3


async def test_before_the_transaction_began_the_facts_are_read_one_by_one(
    pg_routing: RoutingService,
) -> None:
    async def use(ctx: Ctx) -> Any:
        return await ctx.repo.facts({"c1"}, ["m"])

    assert await in_ctx(pg_routing, use) is None


async def test_the_due_timers_read_uses_the_partial_index_of_pending_timers(
    pg_routing: RoutingService,
) -> None:
    """`done = false` (the index's predicate), not `done IS false`, which PostgreSQL cannot
    match to it: a sequential scan of every timer each poll (21 ms at the bench's 180,000)."""
    async with pg_routing.runtime.uow() as uow:
        await uow.session.execute(
            text(
                "INSERT INTO timers (tenant_id, ticket_id, kind, metric, cycle, due_at, fire_at,"
                " done) SELECT 'acme', 't' || g, 'sla_breached', 'resolution', 1,"
                " now() + interval '1 day', now() + interval '1 day', g % 2 = 0"
                " FROM generate_series(1, 5000) AS g"
            )
        )
        await uow.commit()
    async with pg_routing.runtime.uow() as uow:
        await uow.session.execute(text("ANALYZE timers"))
        captured: list[str] = []

        def explain(_conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
            captured.append(statement)

        engine = pg_routing.runtime.engine.sync_engine
        event.listen(engine, "before_cursor_execute", explain)
        try:
            assert await due_timers(uow.session, NOW, limit=10) == []
        finally:
            event.remove(engine, "before_cursor_execute", explain)
        [sql] = captured
        plan = await uow.session.execute(
            text(
                "EXPLAIN "
                + sql.replace("$1::TIMESTAMP WITH TIME ZONE", "now()").replace("$2::INTEGER", "10")
            )
        )
        assert "ix_timers_due" in "\n".join(r[0] for r in plan)
