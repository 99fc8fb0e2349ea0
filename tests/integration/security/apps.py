"""Each service's app as its process builds it, in-process over SQLite and a local bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from sbkit.auth import Keyring, mint
from sbkit.bus.local import LocalBus
from sbkit.web import standalone_app
from sbkit.wiring import build_verifier

SERVICES = ("ingest", "crm", "routing", "analytics", "notifier")


@dataclass
class Running:
    """A started app, its client, its key ring and the bootstrapped service (None for ingest)."""

    name: str
    app: FastAPI
    client: httpx.AsyncClient
    ring: Keyring
    service: Any
    clock: Any = None

    def auth(self, tenant: str, scopes: tuple[str, ...] = ("*",)) -> dict[str, str]:
        """Authorization header of a token of `tenant` with `scopes`."""
        _, token = mint(self.ring, tenant_id=tenant, scopes=list(scopes), ttl_s=3600)
        return {"Authorization": f"Bearer {token}"}


def _common(tmp_path: Path, name: str) -> dict[str, Any]:
    return {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/{name}.db",
        "auth_key_dir": str(tmp_path / "keys"),
        "retry_attempts": 2,
        "retry_initial_backoff_ms": 1,
    }


def build(name: str, tmp_path: Path) -> tuple[FastAPI, Any]:
    """The app of one service exactly as its `app.create_app` wires it, on a local bus."""
    bus = LocalBus(":memory:", poll_interval_s=0.01)
    if name == "ingest":
        from ingest.app import create_app
        from ingest.config import IngestSettings

        settings = IngestSettings(**_common(tmp_path, name), outbox_poll_ms=60_000)
        return create_app(settings, bus=bus), None
    if name == "crm":
        from crm.bootstrap import bootstrap as crm_bootstrap
        from crm.config import CrmSettings

        crm_settings = CrmSettings(**_common(tmp_path, name), outbox_poll_ms=60_000)
        service: Any = crm_bootstrap(crm_settings, bus=bus)
        return standalone_app(service.runtime, service.routers, build_verifier(crm_settings)), (
            service
        )
    if name == "routing":
        from routing.bootstrap import bootstrap as routing_bootstrap
        from routing.config import RoutingSettings

        r_settings = RoutingSettings(**_common(tmp_path, name), outbox_poll_ms=60_000)
        service = routing_bootstrap(r_settings, bus=bus, timers=False)
        return standalone_app(service.runtime, service.routers, build_verifier(r_settings)), service
    if name == "analytics":
        from analytics.bootstrap import bootstrap as analytics_bootstrap
        from analytics.config import AnalyticsSettings

        a_settings = AnalyticsSettings(**_common(tmp_path, name), outbox_poll_ms=60_000)
        service = analytics_bootstrap(a_settings, bus=bus)
        return standalone_app(service.runtime, service.routers, build_verifier(a_settings)), service
    if name == "notifier":
        from notifier.bootstrap import bootstrap as notifier_bootstrap
        from notifier.config import NotifierSettings
        from tests.unit.notifier.conftest import Clock, FakeSender

        n_settings = NotifierSettings(**_common(tmp_path, name))
        clock = Clock()
        service = notifier_bootstrap(
            n_settings, bus=bus, clock=clock, sender=FakeSender(), timers=False
        )
        return standalone_app(service.runtime, service.routers, build_verifier(n_settings)), service
    raise ValueError(name)


@asynccontextmanager
async def running(name: str, tmp_path: Path) -> AsyncIterator[Running]:
    """Start the app of `name` (lifespan: migrations, consumers) and a client on it."""
    app, service = build(name, tmp_path)
    ring = Keyring.load(tmp_path / "keys")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}.test") as c:
            yield Running(name, app, c, ring, service, getattr(service, "clock", None))
