"""customer.erased: the person's cases keep ids, states and times but lose handle, subject and words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from routing.adapters import orm
from routing.bootstrap import RoutingService
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.crm import CustomerErased
from sbcontracts.topics import CUSTOMERS
from sbkit.bus.ports import PoisonMessage
from tests.unit.routing.conftest import attributed, deliver, event_of, tickets
from tests.unit.routing.test_consumers import merged

ANNA = ("anna.kowalska@example.pl", "Kowalska")


async def _history(service: RoutingService) -> list[Any]:
    async with service.runtime.uow() as uow:
        return list((await uow.session.execute(select(orm.ticket_messages))).all())


def _erased() -> CloudEvent[Any]:
    data = CustomerErased(customer_id="c1", erased_ids=("c1", "c2"), erased_at=datetime.now(UTC))
    return event_of(data)


async def test_erasure_scrubs_every_case_of_the_person_once(routing: RoutingService) -> None:
    text = "Dzień dobry, tu Anna Kowalska, gdzie moja paczka?"
    await deliver(routing, attributed(text, customer="c1", sender=ANNA[0], message_id="<a@x>"))
    await deliver(routing, attributed(text, customer="c2", sender=ANNA[0]))
    await deliver(routing, merged())  # c2's case now belongs to c1 (original_customer_id c2)
    await deliver(routing, attributed("Jan Nowak here", customer="c3", sender="jan@example.pl"))
    before = {r.id: r for r in await tickets(routing)}
    event = _erased()
    await deliver(routing, event)
    await deliver(routing, event)  # duplicate: applied once (and scrubbing again changes nothing)
    await deliver(routing, _erased())  # crm re-emitting it: idempotent
    after = {r.id: r for r in await tickets(routing)}
    anna = [r for r in after.values() if r.customer_id == "c1"]
    assert len(anna) == 2 and all(r.recipient is None and r.subject is None for r in anna)
    assert {(r.id, r.status, r.created_at) for r in after.values()} == {
        (r.id, r.status, r.created_at) for r in before.values()
    }  # facts the KPIs count stay
    history = await _history(routing)
    dump = repr(list(after.values())) + repr(history)
    assert not [p for p in ANNA if p in dump]
    assert "Jan Nowak here" in dump and "jan@example.pl" in dump  # nobody else is touched
    assert len(history) == 3 and all(r.message_id for r in history)  # ids keep redeliveries out


async def test_erasure_event_that_does_not_parse_is_poison(routing: RoutingService) -> None:
    raw = (
        b'{"specversion":"1.0","id":"x","source":"urn:switchboard:crm",'
        b'"type":"com.switchboard.customer.erased","tenantid":"acme","data":{"customer_id":""}}'
    )
    with pytest.raises(PoisonMessage):
        await deliver(routing, raw, CUSTOMERS.name)
