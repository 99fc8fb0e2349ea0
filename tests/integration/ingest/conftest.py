"""Fixtures of the ingest integration tests: the app on real Kafka and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ingest.app import create_app
from ingest.config import IngestSettings
from sbkit.auth import Keyring, mint
from sbkit.bus.ports import Bus
from tests.conftest import drop_schema


class Running:
    """The ingest app running on Kafka and PostgreSQL, with a tenant of its own."""

    def __init__(self, app: FastAPI, client: httpx.AsyncClient, ring: Keyring, tenant: str) -> None:
        self.app, self.client, self.ring, self.tenant = app, client, ring, tenant
        self.bus: Bus = app.state.bus

    def token(self) -> dict[str, str]:
        """A token of this test's tenant."""
        _, tok = mint(self.ring, tenant_id=self.tenant, scopes=["*"], ttl_s=600)
        return {"Authorization": f"Bearer {tok}"}

    async def whatsapp_channel(self, app_secret: str) -> str:
        """Create a WhatsApp channel of this tenant; returns its webhook path."""
        body = {
            "kind": "whatsapp",
            "name": "wa",
            "settings": {"default_region": "PL"},
            "secrets": {"app_secret": app_secret, "verify_token": "v"},
        }
        channel = await self.client.post("/v1/channels", json=body, headers=self.token())
        assert channel.status_code == 201, channel.text
        return str(channel.json()["webhook_path"])

    async def ours(self, topic: str) -> list[dict[str, Any]]:
        """Events of this test's tenant on a topic."""
        docs = [json.loads(r.value) for r in await self.bus.read_topic(topic)]
        return [d for d in docs if isinstance(d, dict) and d.get("tenantid") == self.tenant]


@asynccontextmanager
async def run_ingest(
    bootstrap: str, pg_url: str, tmp_path: Path, *, schema: str = "", **overrides: Any
) -> AsyncIterator[Running]:
    """The ingest app (lifespan entered) on `schema`, or on a schema of its own that is
    dropped afterwards."""
    own = not schema
    schema = schema or "ingest_" + uuid.uuid4().hex[:10]
    settings = IngestSettings(
        bus="kafka",
        kafka_bootstrap=bootstrap,
        database_url=pg_url,
        db_schema=schema,
        auth_key_dir=str(tmp_path / "keys"),
        **({"outbox_poll_ms": 50} | overrides),
    )
    app = create_app(settings)
    ring = Keyring.load(tmp_path / "keys")
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as c:
                yield Running(app, c, ring, "t" + uuid.uuid4().hex[:8])
    finally:
        if own:
            await drop_schema(pg_url, schema)


@pytest.fixture
async def running(kafka_bootstrap: str, pg_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    async with run_ingest(kafka_bootstrap, pg_url, tmp_path) as r:
        yield r
