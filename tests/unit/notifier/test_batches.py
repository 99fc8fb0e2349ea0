"""A consumer batch (many events, one transaction, rows written behind at commit) ends exactly where
applying the same events one transaction each ends: state, timers, learned gaps, alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from notifier.bootstrap import NotifierService, bootstrap
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Record
from tests.unit.notifier.conftest import (
    START,
    Clock,
    FakeSender,
    customer,
    deliver,
    order,
    scan,
    settings_for,
    state,
)


def _history() -> list[CloudEvent[Any]]:
    scans = [
        scan(START - timedelta(hours=9)),
        scan(START - timedelta(hours=5)),
        scan(START - timedelta(hours=9)),  # a resent old scan
        scan(START - timedelta(hours=3), carrier_code="WX", is_delay=True),
        scan(START - timedelta(hours=1), estimate_to=START + timedelta(days=1)),  # recovered
        scan(START, estimate_to=START + timedelta(days=6)),  # late again: a new episode
        scan(START - timedelta(hours=2), n=2),
        scan(START - timedelta(hours=1), "delivered", n=2),
    ]
    orders = [order(dispatch_by=START - timedelta(hours=10)), order(n=2)]
    return [*orders, *scans, scans[3], *[order(n=3, dispatch_by=START + timedelta(hours=1))]]


async def _service(path: Path) -> NotifierService:
    path.mkdir()  # noqa: ASYNC240 - a test directory
    service = bootstrap(
        settings_for(path), bus=LocalBus(":memory:"), clock=Clock(), sender=FakeSender(),
        timers=False,
    )  # fmt: skip
    await service.runtime.migrate()
    for e in customer():
        await deliver(service, e)
    return service


async def test_a_batch_ends_where_one_transaction_per_event_ends(tmp_path: Path) -> None:
    one_by_one, batched = await _service(tmp_path / "a"), await _service(tmp_path / "b")
    events = _history()
    for e in events:
        await deliver(one_by_one, e)
    (sub,) = [s for s in batched.runtime._subscriptions if s.topics == (events[0].data.topic,)]
    assert sub.batch_handler is not None
    await sub.batch_handler(
        [Record(sub.topics[0], 0, i, None, encode(e)) for i, e in enumerate(events)]
    )
    expected, got = await state(one_by_one), await state(batched)
    assert got == expected
    assert len(got["notes"]) == 2 and len(got["timers"]) >= 2 and got["gaps"]
    for service in (one_by_one, batched):
        await service.tick()
    assert await state(batched) == await state(one_by_one)
    await one_by_one.runtime.stop()
    await batched.runtime.stop()
