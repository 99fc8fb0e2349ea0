"""routing on real PostgreSQL (a fresh schema), with and without real Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from routing.adapters import driver
from routing.bootstrap import RoutingService, bootstrap
from routing.config import RoutingSettings
from sbcontracts.envelope import CloudEvent
from sbkit.bus.local import LocalBus
from sbkit.db.retry import with_retry
from tests.conftest import drop_schema, unique


def pg_settings(pg_url: str, tmp_path: Path, schema: str, **extra: Any) -> RoutingSettings:
    """Settings of a routing service on a PostgreSQL schema of its own."""
    return RoutingSettings(
        service=unique("routing"),
        database_url=pg_url,
        db_schema=schema,
        auth_key_dir=str(tmp_path / "keys"),
        outbox_poll_ms=20,
        timer_poll_ms=100,
        retry_attempts=3,
        retry_initial_backoff_ms=10,
        db_pool_size=20,
        **extra,
    )


@asynccontextmanager
async def migrated(pg_url: str, tmp_path: Path) -> AsyncIterator[RoutingService]:
    """A migrated routing service on a PostgreSQL schema of its own, with a local bus (not
    started); the schema is dropped after."""
    schema = "routing_" + unique("t").replace("-", "_")
    service = bootstrap(
        pg_settings(pg_url, tmp_path, schema), bus=LocalBus(":memory:"), timers=False
    )
    await service.runtime.migrate()
    try:
        yield service
    finally:
        await service.runtime.stop()
        await drop_schema(pg_url, schema)


@pytest.fixture
async def pg_routing(pg_url: str, tmp_path: Path) -> AsyncIterator[RoutingService]:
    """A migrated routing service on real PostgreSQL with a local bus (not started)."""
    async with migrated(pg_url, tmp_path) as service:
        yield service


@pytest.fixture
async def pg_twin(pg_url: str, tmp_path: Path) -> AsyncIterator[RoutingService]:
    """A second one on a schema of its own (to compare two runs)."""
    async with migrated(pg_url, tmp_path) as service:
        yield service


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every statement sent on the driver connection (`routing.adapters.driver`)."""
    statements: list[str] = []
    run = driver._run

    async def spy(session: Any, sql: str, args: list[Any]) -> Any:
        statements.append(sql)
        return await run(session, sql, args)

    monkeypatch.setattr(driver, "_run", spy)
    return statements


async def apply_concurrently(
    service: RoutingService, handle: Any, batches: list[list[CloudEvent[Any]]]
) -> None:
    """Each batch through the messages batch handler in a transaction of its own, all at once
    (as concurrent partitions do), a deadlocked one run again."""

    async def apply(events: list[CloudEvent[Any]]) -> None:
        async with service.runtime.uow() as uow:
            await handle(uow, events)
            await uow.commit()

    await asyncio.gather(*(with_retry(partial(apply, events)) for events in batches))
