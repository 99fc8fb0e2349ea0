"""Each consumer: a duplicate applies once, a poison message goes to the DLQ (raises PoisonMessage)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from notifier.bootstrap import NotifierService
from sbcontracts.events.common import Channel
from sbcontracts.events.crm import CustomerErased
from sbcontracts.events.ingest import DeliveryReceiptReceived, ReceiptStatus
from sbcontracts.events.routing import TicketOpened, TicketResolved
from sbcontracts.topics import COMMERCE, CUSTOMERS, MESSAGES, RECEIPTS, TICKETS
from sbkit.bus.ports import PoisonMessage
from tests.unit.notifier.conftest import (
    START,
    Clock,
    FakeSender,
    customer,
    deliver,
    event_of,
    notifications,
    order,
    outbox,
    scan,
)

TOPICS = [COMMERCE.name, CUSTOMERS.name, TICKETS.name, RECEIPTS.name, MESSAGES.name]


@pytest.mark.parametrize("topic", TOPICS)
async def test_garbage_on_each_topic_is_poison(notifier: NotifierService, topic: str) -> None:
    with pytest.raises(PoisonMessage):
        await deliver(notifier, b'{"type": "com.switchboard.nope"}', topic)
    with pytest.raises(PoisonMessage):
        await deliver(notifier, b"\xff not json", topic)


async def test_placeholder_estimate_is_poison(notifier: NotifierService) -> None:
    from datetime import UTC, datetime

    with pytest.raises(PoisonMessage):
        await deliver(notifier, scan(START, estimate_to=datetime(1970, 1, 1, tzinfo=UTC)))


async def test_duplicate_scan_event_alerts_once(
    notifier: NotifierService, sender: FakeSender
) -> None:
    for e in customer():
        await deliver(notifier, e)
    await deliver(notifier, order())
    delayed = scan(START, carrier_code="DY")
    await deliver(notifier, delayed)
    await deliver(notifier, delayed)
    assert len(await notifications(notifier)) == 1


async def test_duplicate_customer_events_build_one_read_model(
    notifier: NotifierService, sender: FakeSender
) -> None:
    events = customer("sms")
    for e in [*events, *events]:
        await deliver(notifier, e)
    await deliver(notifier, order())
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    assert [m.channel for m in sender.sent] == ["sms"]


async def test_erased_customer_falls_back_to_the_order_contacts(
    notifier: NotifierService, sender: FakeSender
) -> None:
    for e in customer("sms"):
        await deliver(notifier, e)
    await deliver(notifier, event_of(CustomerErased(customer_id="c-1", erased_at=START)))
    await deliver(notifier, order())
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    assert [r.customer_id for r in await notifications(notifier)] == ["order:o-1"]


async def test_duplicate_ticket_events_and_resolution_lift_suppression(
    notifier: NotifierService, sender: FakeSender
) -> None:
    for e in customer():
        await deliver(notifier, e)
    await deliver(notifier, order())
    opened = event_of(
        TicketOpened(ticket_id="t-1", customer_id="c-1", order_id="o-1", occurred_at=START)
    )
    resolved = event_of(TicketResolved(ticket_id="t-1", customer_id="c-1", occurred_at=START))
    for e in (opened, opened, resolved, resolved):
        await deliver(notifier, e)
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    assert len(sender.sent) == 1


async def test_duplicate_delivery_receipt_settles_once(
    notifier: NotifierService, sender: FakeSender, clock: Clock
) -> None:
    for e in customer():
        await deliver(notifier, e)
    await deliver(notifier, order())
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    receipt = event_of(
        DeliveryReceiptReceived(
            channel=Channel.WHATSAPP,
            provider="fake",
            provider_message_id="p-1",
            status=ReceiptStatus.DELIVERED,
            occurred_at=START,
        )
    )
    await deliver(notifier, receipt)
    await deliver(notifier, receipt)
    assert [r.status for r in await notifications(notifier)] == ["delivered"]
    assert len(await outbox(notifier, "notification.delivered")) == 1
    clock.advance(timedelta(hours=2))  # the notifier's clock (the same fixture)
    await notifier.tick()
    assert len(sender.sent) == 1  # delivered: no fallback after the timeout
