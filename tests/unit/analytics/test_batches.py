"""Folding a partition batch at once (each bucket upserted once) gives what one event per
transaction gives; a poison event inside a batch rolls the whole batch back."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from analytics.adapters.orm import components
from analytics.bootstrap import AnalyticsService, bootstrap
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbcontracts.topics import CALLS, SURVEYS
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import PoisonMessage, Record
from tests.unit.analytics.conftest import CallTimes, call, deliver, settings_for, survey


def _batch(service: AnalyticsService, topic: str, events: Sequence[CloudEvent[Any]]) -> Any:
    sub = next(s for s in service.runtime._subscriptions if topic in s.topics)
    assert sub.batch_handler is not None
    return sub.batch_handler([Record(topic, 0, n, None, encode(e)) for n, e in enumerate(events)])


async def _rows(service: AnalyticsService) -> list[Any]:
    async with service.runtime.uow() as uow:
        return sorted(tuple(r) for r in await uow.session.execute(select(components)))


@pytest.fixture
async def twins(tmp_path: Path) -> AsyncIterator[tuple[AnalyticsService, AnalyticsService]]:
    """Two migrated analytics services on SQLite: one fed per event, one per batch."""
    services = []
    for name in ("single", "batch"):
        (tmp_path / name).mkdir()
        service = bootstrap(settings_for(tmp_path / name), bus=LocalBus(":memory:"))
        await service.runtime.migrate()
        services.append(service)
    yield services[0], services[1]
    for service in services:
        await service.runtime.stop()


def _calls(rnd: random.Random, n: int) -> list[CloudEvent[Any]]:
    out = []
    for i in range(n):
        q, agent, minutes = f"q{rnd.randint(1, 3)}", f"a{rnd.randint(1, 4)}", rnd.uniform(0, 90)
        wait = rnd.randint(0, 40_000)
        out.append(call("offered", f"c{i}", minutes=minutes, queue=q))
        if rnd.random() < 0.2:
            out.append(call("abandoned", f"c{i}", minutes=minutes, queue=q, wait_ms=wait))
            continue
        out.append(call("answered", f"c{i}", minutes=minutes, queue=q, agent=agent, wait_ms=wait))
        times: CallTimes = {
            "talk_ms": rnd.randint(1, 900_000),
            "hold_ms": rnd.randint(0, 60_000),
            "wrap_ms": 9,
        }
        out.append(call("completed", f"c{i}", minutes=minutes + 20, queue=q, agent=agent, **times))
    rnd.shuffle(out)
    return out


async def test_a_batch_folds_like_one_event_per_transaction(
    twins: tuple[AnalyticsService, AnalyticsService],
) -> None:
    single, batched = twins
    rnd = random.Random(6)
    calls = _calls(rnd, 60)
    calls += calls[:10]  # redelivered inside the batch: the inbox drops them
    surveys = [survey("nps", rnd.randint(0, 10), f"s{i}", minutes=i) for i in range(20)]
    for event in [*calls, *surveys]:
        await deliver(single, event)
    await _batch(batched, CALLS.name, calls[:100])
    await _batch(batched, CALLS.name, calls[90:])  # overlaps the first batch
    await _batch(batched, SURVEYS.name, surveys)
    rows = await _rows(single)
    assert len(rows) > 100
    assert await _rows(batched) == rows


async def test_a_poison_event_rolls_its_batch_back(
    twins: tuple[AnalyticsService, AnalyticsService],
) -> None:
    _, batched = twins
    good = [survey("csat", 5, "ok1"), survey("csat", 9, "bad"), survey("csat", 4, "ok2")]
    with pytest.raises(PoisonMessage):
        await _batch(batched, SURVEYS.name, good)
    assert await _rows(batched) == []
