"""Ingest over real Kafka and PostgreSQL: accepted exactly once, adapters consumed, poison dead-lettered."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ingest.app import create_app
from ingest.config import IngestSettings
from sbcontracts.catalog import encode
from sbcontracts.topics import INBOUND, MESSAGES
from sbkit.auth import Keyring, mint
from sbkit.bus.ports import Bus, OutgoingRecord
from sbkit.db.engine import make_engine
from tests.integration.bus_fixtures import eventually
from tests.unit.ingest import samples
from tests.unit.ingest.test_inbound_consumer import adapter_event

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
SECRET = "meta-app-secret"


class Running:
    """The ingest app running on Kafka and PostgreSQL, with a tenant of its own."""

    def __init__(self, client: httpx.AsyncClient, bus: Bus, ring: Keyring, tenant: str) -> None:
        self.client, self.bus, self.ring, self.tenant = client, bus, ring, tenant

    def token(self) -> dict[str, str]:
        """A token of this test's tenant."""
        _, tok = mint(self.ring, tenant_id=self.tenant, scopes=["*"], ttl_s=600)
        return {"Authorization": f"Bearer {tok}"}

    async def ours(self, topic: str) -> list[dict[str, Any]]:
        """Events of this test's tenant on a topic."""
        docs = [json.loads(r.value) for r in await self.bus.read_topic(topic)]
        return [d for d in docs if isinstance(d, dict) and d.get("tenantid") == self.tenant]


@pytest.fixture
async def running(kafka_bootstrap: str, pg_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    schema = "ingest_" + uuid.uuid4().hex[:10]
    settings = IngestSettings(
        bus="kafka",
        kafka_bootstrap=kafka_bootstrap,
        database_url=pg_url,
        db_schema=schema,
        auth_key_dir=str(tmp_path / "keys"),
        outbox_poll_ms=50,
    )
    app = create_app(settings)
    ring = Keyring.load(tmp_path / "keys")
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
                yield Running(c, app.state.bus, ring, "t" + uuid.uuid4().hex[:8])
    finally:
        admin = make_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def test_whatsapp_webhook_lands_once_on_kafka_despite_redelivery(running: Running) -> None:
    body = {
        "kind": "whatsapp",
        "name": "wa",
        "settings": {"default_region": "PL"},
        "secrets": {"app_secret": SECRET, "verify_token": "v"},
    }
    channel = await running.client.post("/v1/channels", json=body, headers=running.token())
    path = channel.json()["webhook_path"]
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
