"""Ingest over real Kafka and PostgreSQL: accepted exactly once, adapters consumed, poison dead-lettered."""

from __future__ import annotations

import asyncio

import pytest

from sbcontracts.catalog import encode
from sbcontracts.topics import INBOUND, MESSAGES
from sbkit.bus.ports import OutgoingRecord
from tests.integration.bus_fixtures import eventually
from tests.integration.ingest.conftest import Running
from tests.unit.ingest import samples
from tests.unit.ingest.test_inbound_consumer import adapter_event

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
SECRET = "meta-app-secret"


async def test_whatsapp_webhook_lands_once_on_kafka_despite_redelivery(running: Running) -> None:
    path = await running.whatsapp_channel(SECRET)
    raw = samples.whatsapp([samples.wa_text("wamid.kafka-" + running.tenant, samples.TEXTS["pl"])])
    headers = {
        "content-type": "application/json",
        "x-hub-signature-256": samples.hub_signature(SECRET, raw),
    }
    answers = await asyncio.gather(
        *[running.client.post(path, content=raw, headers=headers) for _ in range(3)]
    )
    assert [a.status_code for a in answers] == [200] * 3
    await eventually(lambda: _has(running, MESSAGES.name, 1))
    again = await running.client.post(path, content=raw, headers=headers)
    assert again.json()["duplicates"] == 1
    await asyncio.sleep(1.0)  # give a wrongly emitted second event the time to show up
    events = await running.ours(MESSAGES.name)
    assert len(events) == 1
    assert events[0]["data"]["sender"]["value"] == "+48600100200"
    assert events[0]["data"]["language"] == "pl"


async def test_inbound_adapter_record_consumed_once_and_poison_dead_lettered(
    running: Running,
) -> None:
    event = adapter_event("viber-" + running.tenant)
    event = event.model_copy(update={"tenantid": running.tenant})
    twin = adapter_event("viber-" + running.tenant).model_copy(update={"tenantid": running.tenant})
    poison_key = f"{running.tenant}:poison"
    await running.bus.publish(
        [
            OutgoingRecord(INBOUND.name, f"{running.tenant}:conv", encode(event)),
            OutgoingRecord(INBOUND.name, f"{running.tenant}:conv", encode(event)),
            OutgoingRecord(INBOUND.name, f"{running.tenant}:conv", encode(twin)),
            OutgoingRecord(INBOUND.name, poison_key, b"{not an event"),
        ]
    )
    await eventually(lambda: _has(running, MESSAGES.name, 1), limit_s=60)
    await eventually(lambda: _dead_lettered(running, poison_key), limit_s=60)
    await asyncio.sleep(1.0)
    events = await running.ours(MESSAGES.name)
    assert len(events) == 1 and events[0]["data"]["sender"]["value"] == "+40721234567"


async def _has(running: Running, topic: str, n: int) -> bool:
    return len(await running.ours(topic)) >= n


async def _dead_lettered(running: Running, key: str) -> bool:
    return any(r.key == key for r in await running.bus.read_topic(INBOUND.dlq))
