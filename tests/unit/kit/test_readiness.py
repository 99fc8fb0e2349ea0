"""/readyz: which checks gate readiness (broker and consumers, unless the service needs only its DB)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI

from sbkit.bus.ports import Bus
from sbkit.runtime import ServiceRuntime
from sbkit.web import health_router


@dataclass
class FakeRuntime:
    name: str
    db_up: bool

    async def db_ready(self) -> bool:
        return self.db_up


@dataclass
class FakeBus:
    reachable: bool

    async def ping(self) -> bool:
        return self.reachable

    def consumers_ready(self) -> bool:
        return self.reachable


async def _readyz(db_up: bool, bus_up: bool, **kw: Any) -> httpx.Response:
    app = FastAPI()
    # stand-ins: /readyz reads only a runtime's name and db_ready, and the bus's two checks
    runtime = cast(ServiceRuntime, FakeRuntime("svc", db_up))
    app.include_router(health_router([runtime], cast(Bus, FakeBus(bus_up)), **kw))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        return await c.get("/readyz")


@pytest.mark.parametrize(
    ("db_up", "bus_up", "ready_without_bus", "status"),
    [
        (True, True, False, 200),
        (True, False, False, 503),  # a consumer service without Kafka does nothing useful
        (True, False, True, 200),  # ingest: accepts into its outbox, stays in rotation
        (False, True, True, 503),  # nobody is ready without its database
        (False, False, False, 503),
    ],
)
async def test_what_gates_readiness(
    db_up: bool, bus_up: bool, ready_without_bus: bool, status: int
) -> None:
    answer = await _readyz(db_up, bus_up, ready_without_bus=ready_without_bus)
    assert answer.status_code == status
    body = answer.json()
    checks = body["checks"]
    assert checks == {"db.svc": db_up, "bus": bus_up, "consumers": bus_up}  # always reported
