"""customer.erased: orders and alerts keep their facts but no contact of the person; others untouched."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from notifier.adapters import orm
from notifier.bootstrap import NotifierService
from sbcontracts.catalog import encode
from sbcontracts.events.crm import CustomerErased
from sbcontracts.events.ingest import OrderPlaced
from sbkit.bus.ports import Record
from tests.unit.notifier.conftest import (
    START,
    FakeSender,
    customer,
    deliver,
    event_of,
    notifications,
    order,
    scan,
)

ANNA = ("anna@x.pl", "+48600100200", "600100200")


async def _orders(service: NotifierService) -> dict[str, Any]:
    async with service.runtime.uow() as uow:
        return {r.order_id: r for r in await uow.session.execute(select(orm.orders))}


def _someone_elses_order() -> Any:
    data = OrderPlaced(
        order_id="o-jan", customer_email="jan@x.pl", customer_phone="+48600999888",
        placed_at=START, shipments=(),
    )  # fmt: skip
    return event_of(data)


async def test_erasure_blanks_the_persons_order_contacts_and_alert_recipients_once(
    notifier: NotifierService, sender: FakeSender
) -> None:
    for e in customer("sms"):
        await deliver(notifier, e)
    await deliver(notifier, order())
    await deliver(notifier, _someone_elses_order())
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    [sent] = await notifications(notifier)
    assert sent.recipient == "+48600100200"
    erased = event_of(CustomerErased(customer_id="c-1", erased_ids=("c-1",), erased_at=START))
    for e in (erased, erased, event_of(erased.data)):  # duplicate and re-emitted: idempotent
        await deliver(notifier, e)
    orders = await _orders(notifier)
    anna = orders["o-1"]
    assert (anna.customer_email, anna.customer_phone) == (None, None)
    assert str(anna.promised_to) == "2026-11-23" and anna.timezone == "Europe/Warsaw"
    [after] = await notifications(notifier)
    assert after.recipient is None and (after.id, after.status) == (sent.id, sent.status)
    dump = repr(list(orders.values())) + repr(after)
    assert not [p for p in ANNA if p in dump]
    assert orders["o-jan"].customer_email == "jan@x.pl"  # nobody else is touched


async def test_old_events_of_an_erased_person_do_not_bring_them_back(
    notifier: NotifierService, sender: FakeSender
) -> None:
    """After erasure the person's old events come again as new deliveries (replayed from a
    DLQ, re-sent by the shop or by crm's relay after a crash): through the per-record path and
    a batch, the read model stores none of their contacts, and no alert reaches them."""
    for e in customer("sms"):
        await deliver(notifier, e)
    await deliver(notifier, order())
    await deliver(
        notifier, event_of(CustomerErased(customer_id="c-1", erased_ids=("c-1",), erased_at=START))
    )
    for e in [*customer("sms"), order()]:
        await deliver(notifier, e)
    (sub,) = [s for s in notifier.runtime._subscriptions if s.topics == (order().data.topic,)]
    assert sub.batch_handler is not None
    again = [order(), scan(START, carrier_code="DY")]
    await sub.batch_handler(
        [Record(sub.topics[0], 0, i, None, encode(e)) for i, e in enumerate(again)]
    )
    await notifier.tick()
    anna = (await _orders(notifier))["o-1"]
    assert (anna.customer_email, anna.customer_phone, anna.contacts_erased) == (None, None, True)
    async with notifier.runtime.uow() as uow:
        people = [
            (await uow.session.execute(select(t))).all() for t in (orm.customers, orm.handles)
        ]
    assert people == [[], []]
    dump = repr(people) + repr(await _orders(notifier)) + repr(await notifications(notifier))
    assert not [p for p in ANNA if p in dump]
    assert sender.sent == []  # the alert of her late parcel has nobody to go to


async def test_a_new_order_after_erasure_is_a_new_contact(
    notifier: NotifierService, sender: FakeSender
) -> None:
    """Only what was erased stays erased: the same person ordering again later is new data."""
    await deliver(notifier, order())
    await deliver(
        notifier, event_of(CustomerErased(customer_id="c-1", erased_ids=("c-1",), erased_at=START))
    )
    await deliver(notifier, order(n=2))
    orders = await _orders(notifier)
    assert orders["o-2"].customer_email == "anna@x.pl" and not orders["o-2"].contacts_erased
