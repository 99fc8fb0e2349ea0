"""A service's life on Kafka: it starts while Kafka is unreachable (not ready, still accepting
into its outbox, publishing once the cluster answers: no crash loop, nothing lost, nothing
twice), and a graceful stop publishes what its outbox still holds."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sbcontracts.topics import MESSAGES
from sbkit.bus.kafka import KafkaBus
from tests.conftest import drop_schema, free_port
from tests.integration.bus_fixtures import eventually
from tests.integration.ingest.conftest import Running, run_ingest
from tests.unit.ingest import samples

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
SECRET = "meta-app-secret"


class Forwarder:
    """A bootstrap address that refuses connections until `open()`, then forwards to Kafka.

    Only the bootstrap goes through it: the broker's metadata names its own listener, which
    the clients use from then on."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


@pytest.fixture
async def forwarder(kafka_bootstrap: str) -> AsyncIterator[Forwarder]:
    f = Forwarder(kafka_bootstrap)
    yield f
    await f.close()


async def test_ingest_starts_accepts_and_publishes_once_kafka_answers(
    forwarder: Forwarder, kafka_bootstrap: str, pg_url: str, tmp_path: Path
) -> None:
    async with run_ingest(forwarder.address, pg_url, tmp_path) as running:
        assert (await running.client.get("/healthz")).status_code == 200
        ready = await running.client.get("/readyz")
        # ingest stays in rotation: its webhooks need only the database
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"db.ingest": True, "bus": False, "consumers": False}

        status = await _accept_one(running, "nokafka")
        assert status == 200  # durable in the outbox, Kafka or not

        await forwarder.open()

        async def ready_now() -> bool:
            checks = (await running.client.get("/readyz")).json()["checks"]
            return bool(checks["bus"] and checks["consumers"])

        await eventually(ready_now, limit_s=60)
        await eventually(lambda: _count(running, 1), limit_s=30)
        await asyncio.sleep(1.0)  # room for a wrongly published second copy
        assert len(await running.ours(MESSAGES.name)) == 1


async def test_stops_within_the_grace_period_when_kafka_never_answers(
    forwarder: Forwarder, kafka_bootstrap: str, pg_url: str, tmp_path: Path
) -> None:
    """SIGTERM with no cluster: the bus stops retrying and the process ends well inside
    Kubernetes' 30 s grace period (a functional bound, not a benchmark); what the outbox
    holds is published by the next start, once."""
    schema = "ingest_" + uuid.uuid4().hex[:10]
    try:
        async with run_ingest(forwarder.address, pg_url, tmp_path, schema=schema) as running:
            status = await _accept_one(running, "never")
            assert status == 200
            tenant = running.tenant
            stopping = time.monotonic()
        took = time.monotonic() - stopping
        assert took < 20, f"stopping took {took:.1f} s"
        async with run_ingest(kafka_bootstrap, pg_url, tmp_path, schema=schema) as again:
            again.tenant = tenant
            await eventually(lambda: _count(again, 1), limit_s=30)
            await asyncio.sleep(1.0)  # room for a wrongly published second copy
            assert len(await again.ours(MESSAGES.name)) == 1
    finally:
        await drop_schema(pg_url, schema)


async def test_graceful_stop_publishes_what_the_outbox_still_holds(
    kafka_bootstrap: str, pg_url: str, tmp_path: Path
) -> None:
    """The relay only runs at shutdown here (no commit wake-ups, a one-hour poll): the event
    reaches Kafka only if the outbox is flushed before the producer stops."""
    async with run_ingest(kafka_bootstrap, pg_url, tmp_path, outbox_poll_ms=3_600_000) as running:
        relay = running.app.state.runtimes["ingest"].relay
        relay.notify = lambda: None
        await asyncio.sleep(0.5)  # the relay's first (empty) pass is over; it now sleeps
        status = await _accept_one(running, "stop")
        assert status == 200
        assert await running.ours(MESSAGES.name) == []
        tenant = running.tenant
    events = [
        json.loads(r.value) for r in await KafkaBus(kafka_bootstrap).read_topic(MESSAGES.name)
    ]
    assert len([e for e in events if isinstance(e, dict) and e.get("tenantid") == tenant]) == 1


async def _accept_one(running: Running, tag: str) -> int:
    """A new WhatsApp channel of the tenant and one signed webhook to it; the answer's status."""
    path = await running.whatsapp_channel(SECRET)
    raw = samples.whatsapp([samples.wa_text(f"wamid.{tag}-{running.tenant}", "hello")])
    headers = {
        "content-type": "application/json",
        "x-hub-signature-256": samples.hub_signature(SECRET, raw),
    }
    return (await running.client.post(path, content=raw, headers=headers)).status_code


async def _count(running: Running, n: int) -> bool:
    return len(await running.ours(MESSAGES.name)) >= n
