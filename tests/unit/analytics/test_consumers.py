"""Each consumer on the bus: duplicates counted once, poison to the DLQ, late events to their interval."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest

from analytics.adapters import repository
from analytics.bootstrap import AnalyticsService
from analytics.domain.components import Piece
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.crm import MessageAttributed
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.events.routing import TicketAgentReplied
from sbcontracts.topics import CALLS, MESSAGES_ATTRIBUTED, SURVEYS, TICKETS
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord
from tests.unit.analytics.conftest import T0, TENANT, call, survey


def reply(ticket: str) -> CloudEvent[Any]:
    """A first agent reply after 90 s (60 s in business hours)."""
    data = TicketAgentReplied(
        ticket_id=ticket,
        customer_id="c1",
        queue="q1",
        channel=Channel.EMAIL,
        occurred_at=T0,
        message_id=f"m-{ticket}",
        first_response=True,
        response_ms=90_000,
        business_response_ms=60_000,
    )
    return new_event(data, tenant_id=TENANT, source="routing", time=T0)


def attributed(mid: str) -> CloudEvent[Any]:
    """An inbound WhatsApp message attributed to a customer."""
    msg = MessageReceived(
        message_id=mid,
        channel=Channel.WHATSAPP,
        provider="test",
        provider_message_id=mid,
        received_at=T0,
        sender=Handle(kind=HandleKind.PHONE, value="+48600100200"),
        text="hi",
        body="hi",
    )
    data = MessageAttributed(message=msg, customer_id="c1")
    return new_event(data, tenant_id=TENANT, source="crm", time=T0)


CASES: dict[str, tuple[str, Callable[[], CloudEvent[Any]], str]] = {
    "calls": (CALLS.name, lambda: call("answered", "k1", wait_ms=5_000), "ans"),
    "tickets": (TICKETS.name, lambda: reply("t1"), "frt_n"),
    "surveys": (SURVEYS.name, lambda: survey("csat", 5, "r1"), "csat_top2"),
    "messages": (MESSAGES_ATTRIBUTED.name, lambda: attributed("m1"), "messages"),
}


@pytest.fixture
async def running(analytics: AnalyticsService) -> AsyncIterator[tuple[AnalyticsService, LocalBus]]:
    """The analytics runtime and its bus, consuming."""
    bus = analytics.runtime.bus
    assert isinstance(bus, LocalBus)
    await analytics.runtime.start()
    await bus.start()
    yield analytics, bus
    await bus.stop()


async def counter(service: AnalyticsService, name: str) -> int:
    """A component summed over every bucket of the tenant."""
    async with service.runtime.uow() as uow:
        sums = await repository.sums(
            uow.session, tenant=TENANT, pieces=[Piece(None, T0 + timedelta(days=1), "15m")]
        )
    return sum(t.c(name) for t in sums.values())


async def until(check: Callable[[], Any], limit_s: float = 10.0) -> None:
    """Wait until an async check returns truthy."""
    for _ in range(int(limit_s / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def _record(topic: str, event: CloudEvent[Any] | bytes) -> OutgoingRecord:
    return OutgoingRecord(topic, "acme:k", event if isinstance(event, bytes) else encode(event))


@pytest.mark.parametrize("case", list(CASES))
async def test_duplicate_delivery_is_counted_once(
    running: tuple[AnalyticsService, LocalBus], case: str
) -> None:
    service, bus = running
    topic, build, name = CASES[case]
    event = build()
    await bus.publish([_record(topic, event), _record(topic, event)])
    await until(lambda: _inbox_has(service, 1))
    await bus.publish([_record(topic, build())])  # same content, new event id: counted again
    await until(lambda: _inbox_has(service, 2))
    assert await counter(service, name) == 2


@pytest.mark.parametrize("case", list(CASES))
async def test_poison_goes_to_the_dlq_and_the_consumer_moves_on(
    running: tuple[AnalyticsService, LocalBus], case: str
) -> None:
    service, bus = running
    topic, build, name = CASES[case]
    poison: Any = survey("csat", 9, "bad") if case == "surveys" else b"{not json"
    await bus.publish([_record(topic, poison)])
    await until(lambda: _dlq(bus, topic, 1))
    await bus.publish([_record(topic, build())])
    await until(lambda: _inbox_has(service, 1))
    assert await counter(service, name) == 1


async def test_late_event_updates_its_own_interval(
    running: tuple[AnalyticsService, LocalBus],
) -> None:
    service, bus = running
    await bus.publish([_record(CALLS.name, call("answered", "a", minutes=50, wait_ms=1))])
    await bus.publish([_record(CALLS.name, call("answered", "b", minutes=2, wait_ms=1))])
    await until(lambda: _inbox_has(service, 2))
    async with service.runtime.uow() as uow:
        sums = await repository.sums(
            uow.session,
            tenant=TENANT,
            pieces=[Piece(T0, T0 + timedelta(hours=1), "15m")],
            by_interval=True,
        )
    assert {at: t.c("ans") for (_, at), t in sums.items()} == {
        T0: 1,
        T0 + timedelta(minutes=45): 1,
    }


async def _inbox_has(service: AnalyticsService, n: int) -> bool:
    from sqlalchemy import func, select

    from analytics.adapters.orm import kit

    async with service.runtime.uow() as uow:
        return (
            int(
                (
                    await uow.session.execute(select(func.count()).select_from(kit.inbox))
                ).scalar_one()
            )
            == n
        )


async def _dlq(bus: LocalBus, topic: str, n: int) -> bool:
    return len(bus.read_all(f"{topic}.dlq")) == n
