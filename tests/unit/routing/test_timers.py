"""Durable timers: SLA warning/breach across a restart, pause while pending, escalation, re-queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from routing.bootstrap import RoutingService, bootstrap
from routing.entrypoints.worker import fire_due
from routing.service_layer import actions, admin, inbound
from sbcontracts.catalog import decode
from sbcontracts.topics import TICKETS
from sbkit.bus.local import LocalBus
from tests.unit.routing.conftest import (
    add_agent,
    add_queue,
    attributed,
    in_ctx,
    outbox,
    settings_for,
    tickets,
)

T0 = datetime.now(UTC).replace(microsecond=0)
SLA = {"urgent": {"first_response_s": 600, "resolution_s": 3600}}


async def open_case(
    service: RoutingService, text: str = "To skandal! Gdzie jest moja paczka?!"
) -> str:
    ticket_id = await in_ctx(
        service, lambda c: inbound.on_message(c, attributed(text, at=T0).data), now=T0
    )
    assert ticket_id is not None
    return ticket_id


async def test_sla_warning_and_breach_fire_with_no_new_event_across_a_restart(
    tmp_path: Path,
) -> None:
    first = bootstrap(settings_for(tmp_path), bus=LocalBus(":memory:"), timers=False)
    await first.runtime.migrate()
    await add_queue(first, "general", sla=SLA)
    await open_case(first)
    await first.runtime.stop()  # the process goes away with the timers only in the database

    second = bootstrap(settings_for(tmp_path), bus=LocalBus(":memory:"), timers=False)
    assert await fire_due(second.runtime, second.knobs, now=T0 + timedelta(minutes=7)) == 0
    assert await fire_due(second.runtime, second.knobs, now=T0 + timedelta(minutes=9)) == 1
    assert await fire_due(second.runtime, second.knobs, now=T0 + timedelta(minutes=11)) == 1
    [warning] = await outbox(second, "ticket.sla_warning")
    [breach] = await outbox(second, "ticket.sla_breached")
    assert warning.data.metric == breach.data.metric == "first_response"
    assert breach.data.due_at == T0 + timedelta(minutes=10)
    assert await fire_due(second.runtime, second.knobs, now=T0 + timedelta(minutes=11)) == 0
    await second.runtime.stop()


async def test_a_reply_in_time_stops_the_first_response_timers(routing: RoutingService) -> None:
    await add_queue(routing, "general", sla=SLA)
    await add_agent(routing, "a1")
    ticket_id = await open_case(routing)
    await in_ctx(
        routing,
        lambda c: actions.reply(c, ticket_id, agent_id="a1", text="Sprawdzam", status="open"),
        now=T0 + timedelta(minutes=2),
    )
    await fire_due(routing.runtime, routing.knobs, now=T0 + timedelta(minutes=30))
    assert [e.data.metric for e in await outbox(routing, "ticket.sla_warning")] == []


async def test_unmatched_case_escalates_to_the_fallback_queue(routing: RoutingService) -> None:
    await add_queue(routing, "fallback", position=50)
    await add_queue(
        routing,
        "billing-vip",
        position=1,
        skills=[{"skill": "vip", "level": 5}],
        fallback_queue="fallback",
        escalate_after_s=300,
    )
    await add_agent(routing, "a1")
    ticket_id = await open_case(routing, "Proszę o fakturę")
    assert (await tickets(routing))[0].agent_id is None
    await fire_due(routing.runtime, routing.knobs, now=T0 + timedelta(minutes=6))
    [row] = await tickets(routing)
    assert (row.id, row.queue_id, row.agent_id) == (ticket_id, "fallback", "a1")
    [moved] = await outbox(routing, "ticket.transferred")
    assert moved.data.from_queue == "billing-vip"


async def test_agent_offline_past_grace_has_cases_requeued_and_online_agent_drains_backlog(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general")
    await add_agent(routing, "a1")
    await add_agent(routing, "a2", online=False)
    ticket_id = await open_case(routing)
    assert (await tickets(routing))[0].agent_id == "a1"
    await in_ctx(
        routing, lambda c: admin.set_presence(c, "a1", "offline"), now=T0 + timedelta(minutes=1)
    )
    await fire_due(routing.runtime, routing.knobs, now=T0 + timedelta(minutes=2))
    assert (await tickets(routing))[0].agent_id == "a1"  # still within the grace period
    await fire_due(routing.runtime, routing.knobs, now=T0 + timedelta(minutes=4))
    assert (await tickets(routing))[0].agent_id is None
    await in_ctx(
        routing, lambda c: admin.set_presence(c, "a2", "online"), now=T0 + timedelta(minutes=5)
    )
    [row] = await tickets(routing)
    assert (row.id, row.agent_id) == (ticket_id, "a2")


async def test_backlog_drains_highest_priority_then_oldest_when_an_agent_comes_online(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general")
    await add_agent(routing, "a1", online=False, capacity=10)  # room for exactly one email
    calm = await in_ctx(
        routing,
        lambda c: inbound.on_message(c, attributed("Hello, a question", at=T0).data),
        now=T0,
    )
    later = T0 + timedelta(minutes=1)
    angry = await in_ctx(
        routing,
        lambda c: inbound.on_message(
            c, attributed("Skandal!! Paczka spóźniona", customer="c2", at=later).data
        ),
        now=later,
    )
    assert angry is not None
    await in_ctx(
        routing, lambda c: admin.set_presence(c, "a1", "online"), now=T0 + timedelta(minutes=2)
    )
    owners = {r.id: r.agent_id for r in await tickets(routing)}
    assert owners == {angry: "a1", calm: None}
    await in_ctx(routing, lambda c: actions.resolve(c, angry), now=T0 + timedelta(minutes=3))
    assert {r.id: r.agent_id for r in await tickets(routing)}[calm] == "a1"


async def test_resolution_clock_pauses_while_pending_on_the_customer(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", sla=SLA)
    await add_agent(routing, "a1")
    ticket_id = await open_case(routing)
    await in_ctx(
        routing,
        lambda c: actions.reply(
            c, ticket_id, agent_id="a1", text="Proszę o numer", status="pending"
        ),
        now=T0 + timedelta(minutes=10),
    )
    back = T0 + timedelta(hours=2)
    await in_ctx(
        routing, lambda c: inbound.on_message(c, attributed("12345", at=back).data), now=back
    )
    assert (await tickets(routing))[0].status == "open"
    await fire_due(routing.runtime, routing.knobs, now=back + timedelta(minutes=45))
    assert [e.data.metric for e in await outbox(routing, "ticket.sla_breached")] == []
    [warning] = await outbox(routing, "ticket.sla_warning")
    assert warning.data.due_at == back + timedelta(minutes=50)  # 10 of 60 minutes were used before
    await fire_due(routing.runtime, routing.knobs, now=back + timedelta(minutes=51))
    assert [e.data.metric for e in await outbox(routing, "ticket.sla_breached")] == ["resolution"]


async def test_the_runtime_polls_timers_in_the_background(tmp_path: Path) -> None:
    bus = LocalBus(":memory:")
    service = bootstrap(settings_for(tmp_path, timer_poll_ms=50), bus=bus)
    await service.runtime.migrate()
    await add_queue(service, "general", sla={"urgent": {"first_response_s": 1}})
    await service.runtime.start()

    async def sla_types() -> list[str]:
        events = [decode(r.value) for r in await bus.read_topic(TICKETS.name)]
        return [e.type.rsplit(".", 1)[-1] for e in events if "sla" in e.type]

    try:
        await in_ctx(
            service, lambda c: inbound.on_message(c, attributed("Skandal! Paczka spóźniona!").data)
        )
        for _ in range(200):
            if "sla_breached" in await sla_types():
                break
            await asyncio.sleep(0.05)
        assert await sla_types() == ["sla_warning", "sla_breached"]
    finally:
        await service.runtime.stop()


async def test_relaxed_skills_are_retried_when_the_step_is_reached(routing: RoutingService) -> None:
    await add_queue(
        routing,
        "general",
        skills=[{"skill": "parcels", "level": 4}],
        relax=[{"after_s": 120, "lower_by": 2}],
    )
    await add_agent(routing, "junior", skills={"parcels": 2})
    await open_case(routing)
    await fire_due(routing.runtime, routing.knobs, now=T0 + timedelta(minutes=1))
    assert (await tickets(routing))[0].agent_id is None
    await fire_due(routing.runtime, routing.knobs, now=T0 + timedelta(minutes=2, seconds=1))
    assert (await tickets(routing))[0].agent_id == "junior"
