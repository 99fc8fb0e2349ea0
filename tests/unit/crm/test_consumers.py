"""Each consumer on the bus: duplicates are applied once, poison messages go to the DLQ."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from crm.adapters import orm
from crm.bootstrap import CrmService
from sbcontracts.envelope import new_event
from sbcontracts.events.common import Handle, HandleKind
from sbcontracts.events.ingest import (
    ShipmentEventReceived,
    ShipmentStatus,
    SurveyKind,
    SurveyResponded,
)
from sbcontracts.topics import COMMERCE, MESSAGES, NOTIFICATIONS, SURVEYS, TICKETS
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord
from tests.unit.crm.conftest import (
    T0,
    TENANT,
    count,
    eventually,
    live_customers,
    message,
    order,
    record,
)


@pytest.fixture
async def running(crm: CrmService) -> AsyncIterator[tuple[CrmService, LocalBus]]:
    """The crm runtime and its bus, consuming."""
    bus = crm.runtime.bus
    assert isinstance(bus, LocalBus)
    await crm.runtime.start()
    await bus.start()
    yield crm, bus
    await bus.stop()


def survey(email: str, response_id: str = "r1") -> Any:
    """A survey answer from an email respondent."""
    data = SurveyResponded(
        response_id=response_id,
        kind=SurveyKind.CSAT,
        score=5,
        respondent=Handle(kind=HandleKind.EMAIL, value=email),
        comment="quick and kind",
        responded_at=T0 + timedelta(days=1),
    )
    return new_event(data, tenant_id=TENANT, source="ingest")


def shipment(order_id: str) -> Any:
    """A carrier scan of the order's parcel."""
    data = ShipmentEventReceived(
        shipment_id="s1",
        order_id=order_id,
        carrier="dpd",
        tracking_number="T1",
        status=ShipmentStatus.OUT_FOR_DELIVERY,
        occurred_at=T0 + timedelta(days=1),
    )
    return new_event(data, tenant_id=TENANT, source="ingest")


async def dlq_size(bus: LocalBus, topic: str) -> int:
    """Records dead-lettered from a topic."""
    return len(bus.read_all(f"{topic}.dlq"))


async def test_duplicate_message_on_the_bus_is_attributed_once(
    running: tuple[CrmService, LocalBus],
) -> None:
    crm, bus = running
    event = message("anna@example.pl")
    await bus.publish([record(event), record(event)])
    await eventually(lambda: _timeline_is(crm, 1))
    await bus.publish([record(message("anna@example.pl", minutes=9))])
    await eventually(lambda: _timeline_is(crm, 2))
    assert await live_customers(crm) == 1


async def test_duplicate_order_and_shipment_are_applied_once(
    running: tuple[CrmService, LocalBus],
) -> None:
    crm, bus = running
    placed, scan = order("o1", email="anna@example.pl", phone=None), shipment("o1")
    await bus.publish([record(placed, "o1"), record(placed, "o1")])
    await bus.publish([record(scan, "o1"), record(scan, "o1")])
    await eventually(lambda: _timeline_is(crm, 2))
    assert await count(crm, orm.orders) == 1 and await live_customers(crm) == 1


async def test_duplicate_survey_adds_one_timeline_entry(
    running: tuple[CrmService, LocalBus],
) -> None:
    crm, bus = running
    await bus.publish([record(message("anna@example.pl"))])
    await eventually(lambda: _timeline_is(crm, 1))
    answer = survey("anna@example.pl")
    await bus.publish([record(answer), record(answer)])
    await eventually(lambda: _timeline_is(crm, 2))
    assert await count(crm, orm.timeline, kind="survey") == 1


@pytest.mark.parametrize(
    "topic", [MESSAGES.name, COMMERCE.name, SURVEYS.name, TICKETS.name, NOTIFICATIONS.name]
)
async def test_unparseable_record_goes_to_the_dlq_and_the_consumer_moves_on(
    running: tuple[CrmService, LocalBus], topic: str
) -> None:
    crm, bus = running
    await bus.publish([OutgoingRecord(topic, "acme:x", b"{not json")])
    await eventually(lambda: _dlq_is(bus, topic, 1))
    await bus.publish([record(message("after@example.pl"))])
    await eventually(lambda: _timeline_is(crm, 1))


async def test_message_with_an_invalid_sender_phone_is_poison(
    running: tuple[CrmService, LocalBus],
) -> None:
    crm, bus = running
    bad = message("12", kind=HandleKind.PHONE)
    await bus.publish([record(bad)])
    await eventually(lambda: _dlq_is(bus, MESSAGES.name, 1))
    assert await live_customers(crm) == 0


async def _timeline_is(crm: CrmService, n: int) -> bool:
    return await count(crm, orm.timeline) == n


async def _dlq_is(bus: LocalBus, topic: str, n: int) -> bool:
    return await dlq_size(bus, topic) == n
