"""Bus factories for the contract suite: the same tests against the local log and real Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Protocol

import pytest

from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Bus, RetryPolicy
from sbkit.db.engine import make_engine
from tests.conftest import fresh_schema
from tests.fakes.effects import EffectStore

FAST_RETRY = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


class AbortableBus(Bus, Protocol):
    """A bus that can also stop the way `kill -9` does (the local log and Kafka both can)."""

    async def abort(self) -> None: ...


BusFactory = Callable[[list[str]], AbortableBus]


async def eventually(check: Callable[[], Awaitable[bool] | bool], limit_s: float = 40.0) -> None:
    """Wait until `check` holds, or fail."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture(params=["local", "kafka"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which bus backend the test runs on."""
    return str(request.param)


@pytest.fixture
async def make_bus(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[BusFactory]:
    """New bus instances over one shared log (so a second instance is a restarted process)."""
    created: list[AbortableBus] = []

    def factory(topics: list[str]) -> AbortableBus:
        bus: AbortableBus
        if backend == "local":
            bus = LocalBus(str(tmp_path / "bus.db"), default_partitions=3, poll_interval_s=0.05)
        else:
            bootstrap = request.getfixturevalue("kafka_bootstrap")
            bus = KafkaBus(bootstrap, topics=[TopicSpec(t, 3) for t in topics])
        created.append(bus)
        return bus

    yield factory
    for bus in created:
        with contextlib.suppress(Exception):
            await bus.abort()


@pytest.fixture
async def effect_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[EffectStore]:
    """The effect store on SQLite next to the local bus, on PostgreSQL next to Kafka."""
    if backend == "local":
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'effects.db'}")
        store = EffectStore(engine)
        await store.create()
        yield store
        await engine.dispose()
        return
    async with fresh_schema(request.getfixturevalue("pg_url")) as (engine, _):
        store = EffectStore(engine)
        await store.create()
        yield store
