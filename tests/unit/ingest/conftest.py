"""Fixtures of the ingest unit tests: the app over SQLite and an in-memory local bus."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ingest.app import create_app
from ingest.config import IngestSettings
from sbcontracts.topics import MESSAGES
from sbkit.auth import Keyring, mint
from sbkit.bus.local import LocalBus


@dataclass
class Harness:
    """A running ingest app with its bus and a way to mint tokens."""

    app: FastAPI
    client: httpx.AsyncClient
    bus: LocalBus
    ring: Keyring

    def token(self, tenant: str = "acme", scopes: tuple[str, ...] = ("*",)) -> dict[str, str]:
        """Authorization header of a token for `tenant`."""
        _, tok = mint(self.ring, tenant_id=tenant, scopes=list(scopes), ttl_s=600)
        return {"Authorization": f"Bearer {tok}"}

    async def events(self, topic: str = MESSAGES.name) -> list[dict[str, Any]]:
        """Every event published on `topic` so far (after flushing the outbox)."""
        runtime = next(iter(self.app.state.runtimes.values()))
        while await runtime.relay.relay_once():
            pass
        return [json.loads(r.value) for r in await self.bus.read_topic(topic)]


def make_settings(tmp_path: Path, **overrides: Any) -> IngestSettings:
    """Settings of a unit-test app: SQLite file in tmp_path, keys in tmp_path."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/ingest.db",
        "auth_key_dir": str(tmp_path / "keys"),
        "outbox_poll_ms": 60_000,
    }
    values.update(overrides)
    return IngestSettings(**values)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """The ingest app started on a fresh database."""
    async for h in start_harness(tmp_path):
        yield h


async def start_harness(tmp_path: Path, **overrides: Any) -> AsyncIterator[Harness]:
    """Start an app with `overrides` applied to the settings."""
    settings = make_settings(tmp_path, **overrides)
    bus = LocalBus(":memory:")
    app = create_app(settings, bus=bus)
    ring = Keyring.load(tmp_path / "keys")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest.test") as client:
            yield Harness(app, client, bus, ring)


async def add_channel(
    h: Harness, kind: str, secrets: dict[str, str], tenant: str = "acme", **settings: Any
) -> str:
    """Configure a channel and return its webhook path."""
    body = {"kind": kind, "name": kind, "settings": settings, "secrets": secrets}
    r = await h.client.post("/v1/channels", json=body, headers=h.token(tenant))
    assert r.status_code == 201, r.text
    return str(r.json()["webhook_path"])
