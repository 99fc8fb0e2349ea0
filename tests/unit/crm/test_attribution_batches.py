"""Attribution a batch at a time gives exactly what one message per transaction gives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from crm.adapters import orm
from crm.adapters.repository import CustomerRepository
from crm.bootstrap import CrmService, bootstrap
from crm.service_layer.events import ErasedMeanwhile
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.topics import MESSAGES
from sbkit.bus.delivery import handle_chunk
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord, Record, Subscription
from tests.unit.crm.conftest import (
    Api,
    count,
    deliver,
    eventually,
    message,
    order,
    outbox_events,
    record,
    settings_for,
)

PHONE = "+48601234567"


def _sub(service: CrmService, topic: str = MESSAGES.name) -> Subscription:
    return next(s for s in service.runtime._subscriptions if topic in s.topics)


def _records(events: Sequence[CloudEvent[Any]], topic: str = MESSAGES.name) -> list[Record]:
    return [Record(topic, 0, n, None, encode(e)) for n, e in enumerate(events)]


async def deliver_batch(service: CrmService, events: Sequence[CloudEvent[Any]]) -> None:
    """The batch path alone (it raises instead of falling back)."""
    handler = _sub(service).batch_handler
    assert handler is not None
    await handler(_records(events))


async def nowhere(_: Sequence[OutgoingRecord]) -> None:
    raise AssertionError("nothing should reach the DLQ")


@pytest.fixture
async def twins(tmp_path: Path) -> AsyncIterator[tuple[CrmService, CrmService]]:
    """Two migrated crm services on SQLite: one fed per message, one per batch."""
    services = []
    for name in ("single", "batch"):
        (tmp_path / name).mkdir()
        service = bootstrap(settings_for(tmp_path / name), bus=LocalBus(":memory:"))
        await service.runtime.migrate()
        services.append(service)
    yield services[0], services[1]
    for service in services:
        await service.runtime.stop()


def _scenario() -> list[CloudEvent[Any]]:
    anna = message("anna@example.pl", name="Anna")
    return [
        anna,
        message("ANNA@example.pl", minutes=1, name="Anna"),  # same handle, same name
        message(PHONE, kind=HandleKind.PHONE, channel=Channel.SMS, minutes=2),
        message(PHONE, kind=HandleKind.PHONE, channel=Channel.WHATSAPP, minutes=3, name="Ania"),
        message("bob@example.pl", minutes=4, name="Bob"),  # already known, with a language
        anna,  # a duplicate inside the batch
        message("anna@example.pl", minutes=5, name="Anna K."),
        message("anna@example.pl", minutes=6, tenant="globex"),  # another tenant's Anna
    ]


def _canonical(events: list[CloudEvent[Any]]) -> list[tuple[Any, ...]]:
    """The emitted events with customer ids replaced by their order of appearance."""
    ids: dict[str, int] = {}
    out: list[tuple[Any, ...]] = []
    for e in events:
        d = e.data
        cid = ids.setdefault(d.customer_id, len(ids))
        if e.type.endswith("message.attributed"):  # every field: a new one must be in both paths
            fields = d.model_dump_json(exclude={"customer_id"})
            out.append((e.type, e.tenantid, cid, fields, e.causationid))
        else:
            out.append((e.type, e.tenantid, cid))
    return sorted(out, key=lambda t: (t[2], t[0] != "com.switchboard.customer.created"))


async def _state(service: CrmService) -> dict[str, Any]:
    tables = ("customers", "identities", "attributes", "timeline")
    counts = {t: await count(service, getattr(orm, t)) for t in tables}
    return {**counts, "events": _canonical(await outbox_events(service))}


async def test_a_batch_attributes_exactly_like_one_message_per_transaction(
    twins: tuple[CrmService, CrmService],
) -> None:
    single, batched = twins
    bob_order = order("o1", email="bob@example.pl", phone=None, name="Bob")
    for service in twins:
        await deliver(service, bob_order)  # bob is known, with a name from the order
    events = _scenario()
    for e in events:
        await deliver(single, e)
    await deliver_batch(batched, events)  # raises if the batch path could not do it
    expected = await _state(single)
    assert await _state(batched) == expected
    assert expected["customers"] == 4 and expected["timeline"] == 7 + 1


async def test_a_redelivered_batch_changes_nothing(twins: tuple[CrmService, CrmService]) -> None:
    _, batched = twins
    events = _scenario()
    await deliver_batch(batched, events)
    before = await _state(batched)
    await deliver_batch(batched, events)
    assert await _state(batched) == before


async def test_an_erased_persons_old_message_in_a_batch_is_dropped_the_rest_applied(
    api: Api,
) -> None:
    await deliver(api.service, message("anna@example.pl", name="Anna Kowalska"))
    found = await api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})
    assert (await api.call("DELETE", f"/v1/customers/{found.json()[0]['id']}")).status_code == 200
    old = message("anna@example.pl", minutes=30, name="Anna Kowalska")  # sent before erasure
    await deliver_batch(api.service, [old, message("bob@example.pl", minutes=31)])
    assert await count(api.service, orm.customers, status="active") == 1
    assert await count(api.service, orm.attributes, value="Anna Kowalska") == 0


async def test_an_erasure_racing_a_batch_rolls_it_back_and_the_replay_drops_the_message(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await deliver(api.service, message("anna@example.pl"))
    found = await api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})
    await api.call("DELETE", f"/v1/customers/{found.json()[0]['id']}")
    real = CustomerRepository.erased_at_of
    calls: list[int] = []

    async def late_tombstone(self: CustomerRepository, handles: Any) -> Any:
        calls.append(1)  # the first look ran before the erasure committed
        return {} if len(calls) == 1 else await real(self, handles)

    monkeypatch.setattr(CustomerRepository, "erased_at_of", late_tombstone)
    batch = [message("anna@example.pl", minutes=30), message("bob@example.pl", minutes=31)]
    with pytest.raises(ErasedMeanwhile):
        await deliver_batch(api.service, batch)
    await handle_chunk(_sub(api.service), _records(batch), nowhere)  # what the bus does
    assert await count(api.service, orm.customers, status="active") == 1  # bob only
    assert await count(api.service, orm.timeline, kind="message") == 2  # anna's first + bob


async def test_a_poison_message_inside_a_batch_goes_alone_to_the_dlq(api: Api) -> None:
    bus = api.service.runtime.bus
    assert isinstance(bus, LocalBus)
    good = [message(f"p{n}@example.pl", minutes=n) for n in range(4)]
    bad = message("12", kind=HandleKind.PHONE)
    await bus.publish([record(e) for e in (*good[:2], bad, *good[2:])])

    async def settled() -> bool:
        return len(bus.read_all(f"{MESSAGES.name}.dlq")) == 1 and (
            await count(api.service, orm.timeline) == 4
        )

    await eventually(settled)
    assert await count(api.service, orm.customers, status="active") == 4
