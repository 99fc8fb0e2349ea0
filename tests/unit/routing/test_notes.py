"""notification.suppressed: its note lands once on the case as an internal note, never to the customer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from routing.bootstrap import RoutingService
from routing.domain.model import Status
from routing.service_layer import actions
from routing.service_layer.notes import PREFIX
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.notifier import (
    InternalNote,
    NotificationScheduled,
    NotificationSent,
    NotificationSuppressed,
)
from sbcontracts.topics import NOTIFICATIONS
from sbkit.auth import Keyring, TokenVerifier, mint
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord, PoisonMessage
from sbkit.web import standalone_app
from tests.unit.routing.conftest import attributed, deliver, event_of, in_ctx, outbox, tickets

NOW = datetime.now(UTC)
TEXT = "shipment S1 (DHL) of order O1 is late; current estimate 2024-05-03."
COMMON: dict[str, Any] = {
    "customer_id": "c1",
    "order_id": "O1",
    "shipment_id": "S1",
    "episode": 1,
    "delay_reason": "carrier_delay_code",
    "occurred_at": NOW,
}


def suppressed(
    ticket_id: str | None, *, nid: str = "n1", tenant: str = "acme", note: bool = True
) -> CloudEvent[Any]:
    data = NotificationSuppressed(
        notification_id=nid,
        reason="open_case",
        note=InternalNote(ticket_id=ticket_id, text=TEXT) if note else None,
        **COMMON,
    )
    return event_of(data, tenant=tenant)


async def open_case(routing: RoutingService) -> str:
    await deliver(routing, attributed("Where is my parcel?"))
    [row] = await tickets(routing)
    return str(row.id)


async def history(routing: RoutingService, ticket_id: str, tenant: str = "acme") -> list[Any]:
    return list(await in_ctx(routing, lambda c: c.repo.messages(ticket_id), tenant=tenant))


async def internal_added(routing: RoutingService) -> list[CloudEvent[Any]]:
    added = await outbox(routing, "ticket.message_added")
    return [e for e in added if e.data.direction == "internal"]


async def test_note_lands_once_as_internal_and_a_duplicate_adds_nothing(
    routing: RoutingService,
) -> None:
    ticket_id = await open_case(routing)
    before = await tickets(routing)
    event = suppressed(ticket_id)
    await deliver(routing, event)
    await deliver(routing, event)  # redelivery: the inbox drops it
    notes = [m for m in await history(routing, ticket_id) if m.direction == "internal"]
    assert [(n.author, n.text) for n in notes] == [("notifier", PREFIX + TEXT)]
    [added] = await internal_added(routing)
    assert (added.data.ticket_id, added.data.message_id) == (ticket_id, notes[0].message_id)
    assert added.causationid == event.id
    assert await outbox(routing, "outbound.message") == []  # never sent to the customer
    assert [r.status for r in await tickets(routing)] == [r.status for r in before]


async def test_same_notification_in_a_new_envelope_is_still_one_note(
    routing: RoutingService,
) -> None:
    ticket_id = await open_case(routing)
    await deliver(routing, suppressed(ticket_id))
    await deliver(routing, suppressed(ticket_id))  # re-emitted: new event id, same notification
    assert len([m for m in await history(routing, ticket_id) if m.direction == "internal"]) == 1
    assert len(await internal_added(routing)) == 1


async def test_closed_case_records_the_note_but_stays_closed(routing: RoutingService) -> None:
    ticket_id = await open_case(routing)
    await in_ctx(routing, lambda c: actions.resolve(c, ticket_id))
    await in_ctx(routing, lambda c: actions.change_status(c, ticket_id, Status.CLOSED))
    await deliver(routing, suppressed(ticket_id))
    [row] = await tickets(routing)
    assert row.status == "closed"
    assert [m.direction for m in await history(routing, ticket_id)] == ["inbound", "internal"]
    assert len(await internal_added(routing)) == 1
    assert await outbox(routing, "ticket.reopened") == []


@pytest.mark.parametrize(
    ("ticket", "tenant", "note"),
    [("nope", "acme", True), (None, "acme", True), ("own", "acme", False), ("own", "other", True)],
    ids=["unknown-ticket", "no-ticket-id", "no-note", "other-tenant"],
)
async def test_note_without_a_case_of_this_tenant_changes_nothing(
    routing: RoutingService, ticket: str | None, tenant: str, note: bool
) -> None:
    ticket_id = await open_case(routing)
    target = ticket_id if ticket == "own" else ticket
    await deliver(routing, suppressed(target, tenant=tenant, note=note))
    assert [m.direction for m in await history(routing, ticket_id)] == ["inbound"]
    assert await internal_added(routing) == []


async def test_other_notification_types_change_nothing(routing: RoutingService) -> None:
    ticket_id = await open_case(routing)
    scheduled = NotificationScheduled(
        notification_id="n2", reason="allowed", not_before=NOW, **COMMON
    )
    sent = NotificationSent(notification_id="n3", reason="allowed", provider="twilio", **COMMON)
    for data in (scheduled, sent):
        await deliver(routing, event_of(data))
    assert [m.direction for m in await history(routing, ticket_id)] == ["inbound"]
    assert len(await outbox(routing, "ticket.message_added")) == 1  # the customer's message


@pytest.mark.parametrize(
    "raw",
    [
        b'{"type": "com.switchboard.nope"}',
        b'{"specversion":"1.0","id":"x","source":"urn:switchboard:notifier",'
        b'"type":"com.switchboard.notification.suppressed","tenantid":"acme",'
        b'"data":{"note":{"ticket_id":"t1","text":""}}}',
    ],
    ids=["garbage", "invalid-suppressed"],
)
async def test_invalid_notification_is_poison(routing: RoutingService, raw: bytes) -> None:
    with pytest.raises(PoisonMessage):
        await deliver(routing, raw, NOTIFICATIONS.name)
    assert await internal_added(routing) == []


async def test_on_the_bus_a_poison_record_is_dead_lettered_and_the_next_note_lands(
    routing: RoutingService,
) -> None:
    ticket_id = await open_case(routing)
    bus = routing.runtime.bus
    assert isinstance(bus, LocalBus)
    await routing.runtime.start()
    await bus.start()
    try:
        topic = NOTIFICATIONS.name
        await bus.publish([OutgoingRecord(topic, "acme:c1", b"{not json")])
        await bus.publish([OutgoingRecord(topic, "acme:c1", encode(suppressed(ticket_id)))])
        deadline = asyncio.get_running_loop().time() + 10
        while not (bus.read_all(f"{topic}.dlq") and len(await history(routing, ticket_id)) == 2):
            assert asyncio.get_running_loop().time() < deadline, "not dead-lettered / applied"
            await asyncio.sleep(0.02)
        assert len(bus.read_all(f"{topic}.dlq")) == 1
    finally:
        await bus.stop()


async def test_the_note_shows_in_the_tickets_history_over_http(
    routing: RoutingService, tmp_path: Path
) -> None:
    ticket_id = await open_case(routing)
    await deliver(routing, suppressed(ticket_id))
    ring = Keyring.load(tmp_path / "keys")
    app = standalone_app(routing.runtime, routing.routers, TokenVerifier(ring))
    _, token = mint(ring, tenant_id="acme", scopes=["tickets:read"], ttl_s=600)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://routing"
    ) as client:
        r = await client.get(
            f"/v1/tickets/{ticket_id}", headers={"authorization": f"Bearer {token}"}
        )
    assert r.status_code == 200
    [note] = [m for m in r.json()["messages"] if m["direction"] == "internal"]
    assert (note["author"], note["text"], note["channel"]) == ("notifier", PREFIX + TEXT, None)
