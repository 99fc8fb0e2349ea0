"""Export returns everything held; erasure leaves no personal data and old messages stay out."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from crm.adapters import orm
from crm.adapters.repository import CustomerRepository
from crm.service_layer.events import ErasedMeanwhile
from sbcontracts.catalog import decode
from sbcontracts.envelope import new_event
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.events.routing import TicketOpened
from sbcontracts.topics import CUSTOMERS
from sbkit.bus.local import LocalBus
from tests.unit.crm.conftest import T0, TENANT, Api, count, deliver, eventually, message, order

PERSONAL = ("anna", "48601234567", "Kowalska", "hello from")


async def _one(api: Api) -> str:
    await deliver(api.service, message("anna@example.pl", name="Anna Kowalska"))
    await deliver(api.service, message("+48601234567", kind=HandleKind.PHONE, channel=Channel.SMS))
    await deliver(api.service, order("o1", email="anna@example.pl", phone="+48601234567"))
    found = await api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})
    cid = str(found.json()[0]["id"])
    ticket = TicketOpened(
        ticket_id="t1", customer_id=cid, subject="Kowalska: parcel", occurred_at=T0
    )
    await deliver(api.service, new_event(ticket, tenant_id=TENANT, source="routing"))
    return cid


async def _dump(api: Api) -> str:
    """Every row of every crm business table, as text."""
    tables = [orm.customers, *orm.OWNED.values(), orm.shipments, orm.merges, orm.tombstones]
    tables.append(orm.tickets)
    out: list[Any] = []
    async with api.service.runtime.uow() as uow:
        for t in tables:
            out.extend(tuple(r) for r in await uow.session.execute(select(t)))
    return repr(out)


async def test_export_holds_identities_attributes_orders_timeline_and_merges(api: Api) -> None:
    cid = await _one(api)
    doc = (await api.call("GET", f"/v1/customers/{cid}/export")).json()
    assert len(doc["customer_ids"]) == 2 and len(doc["merges"]) == 1
    assert {i["value"] for i in doc["identities"]} == {"anna@example.pl", "+48601234567"}
    assert len(doc["timeline"]) == 4 and doc["orders"][0]["order_id"] == "o1"
    assert doc["tickets"][0]["subject"] == "Kowalska: parcel"


async def test_erasure_leaves_no_personal_data_and_emits_erased(api: Api) -> None:
    cid = await _one(api)
    doc = (await api.call("GET", f"/v1/customers/{cid}/export")).json()
    messages = {e["ref"] for e in doc["timeline"] if e["kind"] == "message"}
    before = await _dump(api)
    assert all(p in before for p in PERSONAL)
    r = await api.call("DELETE", f"/v1/customers/{cid}")
    assert r.status_code == 200 and len(r.json()["erased_ids"]) == 2
    dump = await _dump(api)
    assert not [p for p in PERSONAL if p in dump]
    assert (await api.call("GET", f"/v1/customers/{cid}")).status_code == 404
    bus = api.service.runtime.bus
    assert isinstance(bus, LocalBus)

    async def published() -> list[Any]:
        return [
            e
            for e in map(decode, (r.value for r in bus.read_all(CUSTOMERS.name)))
            if e.type.endswith("erased")
        ]

    await eventually(published)
    erased = (await published())[0].data
    assert len(erased.handle_hashes) == 2
    assert len(messages) == 2 and set(erased.message_ids) == messages  # for ingest to scrub


async def test_redelivered_old_message_does_not_bring_erased_data_back(api: Api) -> None:
    cid = await _one(api)
    await api.call("DELETE", f"/v1/customers/{cid}")
    old = message("anna@example.pl", minutes=30, name="Anna Kowalska")  # sent before erasure
    await deliver(api.service, old)
    await deliver(api.service, order("o2", email="anna@example.pl", phone=None))
    assert await count(api.service, orm.identities) == 0
    assert "anna" not in await _dump(api)


async def test_a_new_message_after_erasure_starts_a_fresh_customer(api: Api) -> None:
    cid = await _one(api)
    await api.call("DELETE", f"/v1/customers/{cid}")
    await deliver(api.service, message("anna@example.pl", minutes=60 * 24 * 365 * 2))
    assert await count(api.service, orm.customers, status="active") == 1


async def test_message_racing_an_erasure_is_rolled_back_and_dropped_on_retry(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = await _one(api)
    await api.call("DELETE", f"/v1/customers/{cid}")
    real = CustomerRepository.erased_since
    calls: list[int] = []

    async def late_tombstone(self: CustomerRepository, handle: Any, when: Any) -> bool:
        calls.append(1)  # the first check ran before the erasure committed
        return False if len(calls) == 1 else await real(self, handle, when)

    monkeypatch.setattr(CustomerRepository, "erased_since", late_tombstone)
    with pytest.raises(ErasedMeanwhile):
        await deliver(api.service, message("anna@example.pl", minutes=30))
    await deliver(api.service, message("anna@example.pl", minutes=30))  # the bus's retry
    assert await count(api.service, orm.identities) == 0
    assert await count(api.service, orm.customers, status="active") == 0
