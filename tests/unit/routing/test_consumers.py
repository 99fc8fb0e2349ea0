"""Each consumer: duplicates apply once, poison goes to the DLQ; callbacks; merges fold and split."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from routing.bootstrap import RoutingService
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.crm import CustomerMerged, CustomerUnmerged, Provenance, ProvenanceKind
from sbcontracts.events.ingest import CallAbandoned
from sbcontracts.topics import CALLS, CUSTOMERS, MESSAGES_ATTRIBUTED
from sbkit.bus.ports import PoisonMessage
from tests.unit.routing.conftest import add_queue, attributed, deliver, event_of, outbox, tickets

NOW = datetime.now(UTC)
PROV = Provenance(kind=ProvenanceKind.AGENT, ref="agent-1")


def abandoned(
    caller: Handle | None = Handle(kind=HandleKind.PHONE, value="+48600100200"),
) -> CloudEvent[Any]:
    return event_of(CallAbandoned(call_id="call-1", caller=caller, occurred_at=NOW, wait_ms=30_000))


def merged(merge_id: str = "mg1") -> CloudEvent[Any]:
    data = CustomerMerged(
        merge_id=merge_id,
        customer_id="c1",
        survivor_id="c1",
        merged_id="c2",
        provenance=PROV,
        merged_at=NOW,
    )
    return event_of(data)


async def test_duplicate_attributed_message_is_applied_once(routing: RoutingService) -> None:
    event = attributed("Where is my parcel?")
    await deliver(routing, event)
    await deliver(routing, event)
    assert len(await tickets(routing)) == 1
    assert len(await outbox(routing, "ticket.message_added")) == 1


@pytest.mark.parametrize("topic", [MESSAGES_ATTRIBUTED.name, CALLS.name, CUSTOMERS.name])
async def test_garbage_on_each_topic_is_poison(routing: RoutingService, topic: str) -> None:
    with pytest.raises(PoisonMessage):
        await deliver(routing, b'{"type": "com.switchboard.nope"}', topic)


async def test_abandoned_call_opens_one_callback_case_in_the_callback_queue(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", position=1)
    await add_queue(routing, "callbacks", position=2, callback=True)
    event = abandoned()
    await deliver(routing, event)
    await deliver(routing, event)
    [row] = await tickets(routing)
    assert (row.kind, row.queue_id, row.channel, row.priority) == (
        "callback",
        "callbacks",
        "voice",
        "high",
    )
    [opened] = await outbox(routing, "ticket.opened")
    assert opened.data.kind == "callback"


async def test_abandoned_call_without_caller_is_poison(routing: RoutingService) -> None:
    with pytest.raises(PoisonMessage):
        await deliver(routing, abandoned(caller=None))
    assert await tickets(routing) == []


async def test_merged_customers_open_cases_merge_and_an_undo_splits_them(
    routing: RoutingService,
) -> None:
    await deliver(routing, attributed("Where is my parcel?", customer="c1"))
    await deliver(routing, attributed("Gdzie paczka?", customer="c2", channel=Channel.WHATSAPP))
    event = merged()
    await deliver(routing, event)
    await deliver(routing, event)  # duplicate: applied once
    rows = {r.customer_id + ":" + r.status for r in await tickets(routing)}
    assert rows == {"c1:new", "c1:closed"}
    survivor = next(r for r in await tickets(routing) if r.status == "new")
    await deliver(routing, attributed("and?", customer="c1"))
    assert len([r for r in await tickets(routing) if r.status != "closed"]) == 1
    undo = CustomerUnmerged(
        merge_id="mg1",
        customer_id="c1",
        survivor_id="c1",
        restored_id="c2",
        provenance=PROV,
        unmerged_at=NOW,
    )
    await deliver(routing, event_of(undo))
    after = {r.customer_id: r for r in await tickets(routing)}
    assert after["c2"].status == "open" and after["c1"].id == survivor.id


async def test_merge_event_that_does_not_parse_is_poison(routing: RoutingService) -> None:
    raw = (
        b'{"specversion":"1.0","id":"x","source":"urn:switchboard:crm",'
        b'"type":"com.switchboard.customer.merged","tenantid":"acme","data":{}}'
    )
    with pytest.raises(PoisonMessage):
        await deliver(routing, raw, CUSTOMERS.name)
