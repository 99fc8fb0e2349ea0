"""The decision path: SLA clocks from the customer's message time, the order a case is about,
configuration cached across processes, and consumer batches equal to one message at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from routing.bootstrap import RoutingService, bootstrap
from routing.domain.orders import order_reference
from routing.entrypoints.consumers import batch_handlers
from routing.entrypoints.worker import fire_due
from routing.service_layer import admin, inbound
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.common import Channel
from sbkit.bus.local import LocalBus
from tests.unit.routing.conftest import (
    TENANT,
    add_agent,
    add_queue,
    attributed,
    in_ctx,
    outbox,
    settings_for,
    tickets,
)

NOW = datetime.now(UTC).replace(microsecond=0)
SLA = {"normal": {"first_response_s": 3600, "resolution_s": 7200}}


def late(
    text: str,
    *,
    written: datetime,
    received: datetime,
    orders: tuple[str, ...] = (),
    customer: str = "c1",
) -> CloudEvent[Any]:
    """A message the provider timestamped `written`, ingest received at `received`."""
    data = attributed(text, at=received, customer=customer).data
    msg = data.message.model_copy(update={"provider_timestamp": written})
    update = {"message": msg, "recent_order_ids": orders}
    return new_event(data.model_copy(update=update), tenant_id=TENANT, source="crm")


async def test_sla_clocks_start_when_the_customer_wrote_not_when_a_delayed_consumer_ran(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", sla=SLA)
    written = NOW - timedelta(minutes=50)  # the consumer was down for 50 minutes
    event = late("Hello, a question", written=written, received=written + timedelta(seconds=3))
    await in_ctx(routing, lambda c: inbound.on_message(c, event.data), now=NOW)

    [ticket] = await tickets(routing)
    assert ticket.cycle_started_at == ticket.awaiting_since == written
    assert await fire_due(routing.runtime, routing.knobs, now=NOW) == 1  # 80 % of 1 h: due
    [warning] = await outbox(routing, "ticket.sla_warning")
    assert warning.data.metric == "first_response"
    assert warning.data.due_at == written + timedelta(hours=1)
    assert await fire_due(routing.runtime, routing.knobs, now=written + timedelta(minutes=61)) == 1
    assert [e.data.metric for e in await outbox(routing, "ticket.sla_breached")] == [
        "first_response"
    ]


async def test_an_implausible_provider_timestamp_falls_back_to_the_receive_time(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", sla=SLA)
    received = NOW - timedelta(minutes=5)
    for n, written in enumerate((received - timedelta(days=3), received + timedelta(hours=2))):
        event = late("Hi", written=written, received=received, customer=f"c{n}")
        await in_ctx(routing, partial(inbound.on_message, data=event.data), now=NOW)
    assert [t.cycle_started_at for t in await tickets(routing)] == [received, received]


def test_the_order_a_case_is_about() -> None:
    assert order_reference("Where is order 10045?", ("10012", "10045")) == "10045"
    assert order_reference("my parcel is late", ("10012",)) == "10012"
    assert order_reference("my parcel is late", ("10012", "10045")) is None  # ambiguous
    assert order_reference("order 100450 please", ("10045", "10012")) is None  # not a token
    assert order_reference("anything", ()) is None


async def test_ticket_opened_names_the_order_the_message_mentions(routing: RoutingService) -> None:
    event = late(
        "Zamówienie 10045 nie dotarło", written=NOW, received=NOW, orders=("10050", "10045")
    )
    await in_ctx(routing, lambda c: inbound.on_message(c, event.data), now=NOW)
    [opened] = await outbox(routing, "ticket.opened")
    assert opened.data.order_id == "10045"
    assert [t.order_id for t in await tickets(routing)] == ["10045"]


async def test_a_queue_changed_by_another_process_routes_the_next_message(tmp_path: Path) -> None:
    one = bootstrap(settings_for(tmp_path), bus=LocalBus(":memory:"), timers=False)
    other = bootstrap(settings_for(tmp_path), bus=LocalBus(":memory:"), timers=False)
    await one.runtime.migrate()
    await add_queue(one, "general", position=9)
    await add_queue(one, "delays", position=1, filters=[{"categories": ["returns"]}])
    first = attributed("Where is my parcel? It is late", customer="c1")
    await in_ctx(other, lambda c: inbound.on_message(c, first.data))  # `other` caches the queues
    values = {
        "name": "delays",
        "position": 1,
        "policy": "longest_idle",
        "config": {"filters": [{"categories": ["delivery_delay"]}]},
    }
    await in_ctx(one, lambda c: admin.put_queue(c, "delays", values, create=False))
    second = attributed("Where is my parcel? It is late", customer="c2")
    await in_ctx(other, lambda c: inbound.on_message(c, second.data))
    assert [t.queue_id for t in await tickets(other)] == ["general", "delays"]
    for service in (one, other):
        await service.runtime.stop()


def _batch() -> list[CloudEvent[Any]]:
    """New customers, a customer writing twice, the same message twice, a reply-all stranger."""
    events = [
        attributed("Gdzie jest moja paczka?", customer="c1", language="pl"),
        attributed("Paczka uszkodzona", customer="c2", channel=Channel.WEBCHAT, language="pl"),
        attributed("Still waiting!!", customer="c1", channel=Channel.WEBCHAT, language="en"),
        attributed("I want a refund", customer="c3", language="en"),
        attributed("Hello?", customer="c4", language="en"),
    ]
    repeat = events[3].data.model_copy(update={"customer_id": "c3"})
    return [*events, new_event(repeat, tenant_id=TENANT, source="crm")]


def _outcome(rows: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((t.customer_id, t.status, t.queue_id, t.agent_id, t.channel) for t in rows)


async def _service(path: Path, name: str) -> RoutingService:
    url = f"sqlite+aiosqlite:///{path}/{name}.db"
    settings = settings_for(path).model_copy(update={"database_url": url})
    service = bootstrap(settings, bus=LocalBus(":memory:"), timers=False)
    await service.runtime.migrate()
    await add_queue(service, "general")
    for agent, languages in (("pl1", {"pl": 5}), ("en1", {"en": 5})):
        await add_agent(service, agent, capacity=50, languages=languages)
    return service


async def test_a_consumer_batch_has_the_effect_of_its_messages_one_by_one(tmp_path: Path) -> None:
    events = _batch()
    single, batched = await _service(tmp_path, "a"), await _service(tmp_path, "b")
    for event in events:
        await in_ctx(single, partial(inbound.on_message, data=event.data))
    handle = batch_handlers(batched.knobs)["messages"]
    async with batched.runtime.uow() as uow:
        await handle(uow, events)
        await uow.commit()

    assert _outcome(await tickets(batched)) == _outcome(await tickets(single))
    kinds = [[e.type for e in await outbox(s)] for s in (single, batched)]
    assert kinds[0] == kinds[1]
    assert kinds[0].count("com.switchboard.ticket.message_added") == 5  # the repeat is dropped
    for service in (single, batched):
        await service.runtime.stop()
