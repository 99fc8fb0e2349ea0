"""analytics fixtures: the service on SQLite in a temp folder, an in-memory bus, event builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict, Unpack

import httpx
import pytest

from analytics.bootstrap import AnalyticsService, bootstrap
from analytics.config import AnalyticsSettings
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.ingest import (
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallData,
    CallOffered,
    SurveyKind,
    SurveyResponded,
)
from sbkit.auth import Keyring, mint
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Record
from tests.fakes.served import served

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TENANT = "acme"
CALL_TYPES: dict[str, type[CallData]] = {
    "offered": CallOffered,
    "answered": CallAnswered,
    "abandoned": CallAbandoned,
    "completed": CallCompleted,
}


class CallTimes(TypedDict, total=False):
    """The durations of a call event, in milliseconds."""

    wait_ms: int
    talk_ms: int
    hold_ms: int
    wrap_ms: int


def settings_for(tmp_path: Path, **extra: Any) -> AnalyticsSettings:
    """Settings of an analytics on SQLite in tmp_path with fast retries."""
    return AnalyticsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/analytics.db",
        auth_key_dir=str(tmp_path / "keys"),
        retry_attempts=2,
        retry_initial_backoff_ms=1,
        outbox_poll_ms=20,
        live_refresh_ms=50,
        **extra,
    )


def call(
    kind: str,
    call_id: str,
    *,
    minutes: float = 0,
    queue: str = "q1",
    agent: str | None = None,
    tenant: str = TENANT,
    **times: Unpack[CallTimes],
) -> CloudEvent[Any]:
    """A call lifecycle event at T0 + minutes (times: wait_ms, talk_ms, hold_ms, wrap_ms)."""
    at = T0 + timedelta(minutes=minutes)
    data = CALL_TYPES[kind](call_id=call_id, queue=queue, agent_id=agent, occurred_at=at, **times)
    return new_event(data, tenant_id=tenant, source="ingest", time=at)


def survey(
    kind: str, score: int, rid: str, *, minutes: float = 0, tenant: str = TENANT
) -> CloudEvent[Any]:
    """A survey answer at T0 + minutes."""
    at = T0 + timedelta(minutes=minutes)
    data = SurveyResponded(response_id=rid, kind=SurveyKind(kind), score=score, responded_at=at)
    return new_event(data, tenant_id=tenant, source="ingest", time=at)


async def deliver(
    service: AnalyticsService, event: CloudEvent[Any] | bytes, topic: str = ""
) -> None:
    """Run a record through the consumer the runtime registered for its topic (errors propagate)."""
    raw = event if isinstance(event, bytes) else encode(event)
    topic = topic or (event.data.topic if not isinstance(event, bytes) else "")
    for sub in service.runtime._subscriptions:
        if topic in sub.topics:
            await sub.handler(Record(topic, 0, 0, None, raw))


@pytest.fixture
async def analytics(tmp_path: Path) -> AsyncIterator[AnalyticsService]:
    """A migrated analytics service on SQLite with a local bus (not started)."""
    service = bootstrap(settings_for(tmp_path), bus=LocalBus(":memory:", poll_interval_s=0.01))
    await service.runtime.migrate()
    yield service
    await service.runtime.stop()


class Api:
    """An HTTP client of one analytics app with a token per tenant."""

    def __init__(self, client: httpx.AsyncClient, ring: Keyring, service: AnalyticsService) -> None:
        self.client, self.ring, self.service = client, ring, service

    def auth(self, tenant: str = TENANT, scopes: tuple[str, ...] = ("kpis:*",)) -> dict[str, str]:
        """Headers with a bearer token for a tenant."""
        _, token = mint(self.ring, tenant_id=tenant, scopes=list(scopes), ttl_s=600)
        return {"authorization": f"Bearer {token}"}

    async def get(self, url: str, *, tenant: str = TENANT, **params: Any) -> httpx.Response:
        """A GET as the tenant's supervisor."""
        return await self.client.get(url, params=params, headers=self.auth(tenant))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The analytics app on SQLite with a local bus, served in-process."""
    service = bootstrap(settings_for(tmp_path), bus=LocalBus(":memory:", poll_interval_s=0.01))
    async with served(service, tmp_path / "keys", "http://analytics") as (client, ring):
        yield Api(client, ring, service)
