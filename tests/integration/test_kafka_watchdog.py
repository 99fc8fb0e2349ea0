"""The bus's watchdog on a real broker: a consumer that waits forever without failing is found
from outside (its group's committed offsets stand still while records wait), logged with where it
waits, reported not ready, and replaced; nothing is lost. An idle group is left alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

import sbkit.bus.kafka as kafka_module
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord, Record, Subscription
from tests.conftest import unique
from tests.fakes.logs import Recorder, record_logs
from tests.integration.bus_fixtures import eventually


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    return record_logs(monkeypatch, kafka_module)


@pytest.fixture
async def buses() -> AsyncIterator[list[KafkaBus]]:
    made: list[KafkaBus] = []
    yield made
    for bus in made:
        await bus.stop()


def stalls(group: str) -> float:
    return REGISTRY.get_sample_value("sb_bus_consumer_stalls_total", {"group": group}) or 0.0


@pytest.mark.parametrize("grouped", [True, False], ids=["group", "group-less reader"])
async def test_a_consumer_stuck_without_failing_is_logged_reported_and_replaced(
    kafka_bootstrap: str, logged: Recorder, buses: list[KafkaBus], grouped: bool
) -> None:
    # a group-less reader (every process reads the control topic whole) is watched by the
    # offsets it handled, a group by its committed offsets
    topic, group = unique("stall"), unique("g") if grouped else None
    never = asyncio.Event()
    handled: list[bytes] = []

    async def hangs_the_first_time(r: Record) -> None:
        if not handled and not never.is_set() and r.offset == 0 and not logged.named("stuck"):
            logged.events.append({"event": "stuck"})
            await never.wait()  # no error, no timeout: what the chaos run's crm consumer did
        handled.append(r.value)

    bus = KafkaBus(
        kafka_bootstrap, topics=[TopicSpec(topic, 2)], stall_after_s=3, watch_every_s=0.5
    )
    buses.append(bus)
    bus.subscribe(Subscription(group=group, topics=[topic], handler=hangs_the_first_time))
    await bus.start()
    await eventually(bus.consumers_ready, 60)
    seen_ready: list[bool] = []

    async def sample() -> None:
        while True:
            seen_ready.append(bus.consumers_ready())
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        await bus.publish([OutgoingRecord(topic, "one-key", f"m{i}".encode()) for i in range(5)])
        await eventually(lambda: len(handled) == 5, 90)
        await eventually(bus.consumers_ready, 30)
    finally:
        sampler.cancel()

    assert sorted(handled) == [f"m{i}".encode() for i in range(5)]  # nothing lost, none twice
    # on a broker that just started, the replacement may itself take longer than 3 s to join
    # and be called stalled again; the first verdict is the one about the stuck handler
    stall, *_ = logged.named("bus.consumer_stalled")
    assert stall["group"] == group and stall["topics"] == [topic] and stall["lag"] == 5
    assert any("in hangs_the_first_time" in line for line in stall["waiting_at"])
    assert any("aiokafka" in line for line in stall["client_tasks"])  # e.g. its heartbeat
    if group:
        assert stalls(group) == len(logged.named("bus.consumer_stalled"))
    assert False in seen_ready  # /readyz said so while the group stood still


async def test_a_consumer_task_that_ended_is_started_again(
    kafka_bootstrap: str, logged: Recorder, buses: list[KafkaBus]
) -> None:
    topic, group = unique("died"), unique("g")
    handled: list[bytes] = []

    async def handler(r: Record) -> None:
        handled.append(r.value)

    bus = KafkaBus(kafka_bootstrap, topics=[TopicSpec(topic, 1)], watch_every_s=0.5)
    buses.append(bus)
    sub = Subscription(group=group, topics=[topic], handler=handler)
    bus.subscribe(sub)
    await bus.start()
    await eventually(bus.consumers_ready, 60)
    bus._tasks[id(sub)].cancel()  # as if it had died of an unexpected error
    await eventually(lambda: not bus.consumers_ready(), 10)
    await bus.publish([OutgoingRecord(topic, "k", b"after")])
    await eventually(lambda: handled == [b"after"], 60)
    assert logged.named("bus.consumer_restarted")


async def test_an_idle_group_and_a_slow_moving_one_are_left_alone(
    kafka_bootstrap: str, logged: Recorder, buses: list[KafkaBus]
) -> None:
    topic, group = unique("slow"), unique("g")
    handled: list[bytes] = []

    async def slow(r: Record) -> None:
        await asyncio.sleep(0.5)  # every record well within the limit, the group keeps moving
        handled.append(r.value)

    bus = KafkaBus(
        kafka_bootstrap,
        topics=[TopicSpec(topic, 1)],
        stall_after_s=2,
        watch_every_s=0.25,
        max_poll_records=1,
    )
    buses.append(bus)
    bus.subscribe(Subscription(group=group, topics=[topic], handler=slow))
    await bus.start()
    await eventually(bus.consumers_ready, 60)
    await asyncio.sleep(3)  # idle past the limit
    await bus.publish([OutgoingRecord(topic, "k", f"m{i}".encode()) for i in range(12)])
    await eventually(lambda: len(handled) == 12, 60)  # ~6 s of work, 2 s limit
    assert not logged.named("bus.consumer_stalled")
    assert stalls(group) == 0
