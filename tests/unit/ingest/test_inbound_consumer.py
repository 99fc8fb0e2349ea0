"""Adapter records on sb.inbound.v1: normalised like HTTP, duplicates dropped, poison to the DLQ."""

from __future__ import annotations

import asyncio
from typing import Any

from sbcontracts.catalog import encode
from sbcontracts.envelope import new_event
from sbcontracts.events.ingest import InboundAdapterMessage
from sbcontracts.topics import INBOUND, MESSAGES, partition_key
from sbkit.bus.ports import OutgoingRecord
from tests.unit.ingest.conftest import Harness


def adapter_event(external_id: str, **over: Any) -> Any:
    """An InboundAdapterMessage envelope as an adapter publishes it."""
    values: dict[str, Any] = {
        "adapter": "viber-bridge",
        "channel": "api",
        "external_id": external_id,
        "sender_kind": "phone",
        "sender": "0721 234 567",
        "region": "RO",
        "text": "Bună ziua, coletul meu nu a ajuns încă. Puteți verifica, vă rog?",
        "conversation_id": "conv-42",
    }
    values.update(over)
    return new_event(InboundAdapterMessage(**values), tenant_id="acme", source="adapter.viber")


def record(value: bytes, key: str = "acme:conv-42") -> OutgoingRecord:
    """A raw record for sb.inbound.v1."""
    return OutgoingRecord(INBOUND.name, key, value)


async def wait_for(check: Any, timeout_s: float = 10.0) -> None:
    """Poll an async predicate until true."""
    for _ in range(int(timeout_s / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_adapter_record_normalised_once_and_poison_dead_lettered(harness: Harness) -> None:
    event = adapter_event("viber-1")
    same_message_new_event = adapter_event("viber-1")
    poison = adapter_event("viber-2", sender_kind="email", sender="not an address")
    await harness.bus.publish(
        [
            record(encode(event)),
            record(encode(event)),
            record(encode(same_message_new_event)),
            record(b"{not json"),
            record(encode(poison)),
        ]
    )
    await wait_for(lambda: _count(harness, INBOUND.dlq, 2))
    events = await harness.events()
    assert len(events) == 1
    data = events[0]["data"]
    assert data["sender"] == {"kind": "phone", "value": "+40721234567"}
    assert data["language"] == "ro" and data["provider"] == "viber-bridge"
    assert events[0]["causationid"] == event.id
    [published] = await harness.bus.read_topic(MESSAGES.name)
    assert published.key == partition_key("acme", "phone:+40721234567")


async def _count(h: Harness, topic: str, n: int) -> bool:
    await h.events()
    return len(await h.bus.read_topic(topic)) >= n
