"""Kafka smoke: produce, group consume, commit, hard-restart the broker, resume: none lost, none twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord, Record, RetryPolicy, Subscription
from tests.conftest import fresh_schema, kafka_control, unique
from tests.fakes.effects import EffectStore
from tests.integration.bus_fixtures import eventually


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[EffectStore]:
    async with fresh_schema(pg_url) as (engine, _):
        s = EffectStore(engine)
        await s.create()
        yield s


async def _publish_with_retry(bus: KafkaBus, records: list[OutgoingRecord]) -> None:
    """A client that got no acknowledgement sends again (that is what at-least-once means)."""
    for _ in range(60):
        try:
            await asyncio.wait_for(bus.publish(records), 10)
            return
        except Exception:  # noqa: BLE001 - broker still coming back
            await asyncio.sleep(1)
    raise AssertionError("publishing never succeeded after the broker restart")


async def test_broker_hard_restart_loses_nothing_and_applies_nothing_twice(
    kafka_bootstrap: str, store: EffectStore
) -> None:
    topic, group = unique("smoke"), unique("g")
    handled: Counter[str] = Counter()

    async def handler(r: Record) -> None:
        handled[r.value.decode()] += 1
        await store.apply(r.value.decode())

    def make() -> KafkaBus:
        bus = KafkaBus(kafka_bootstrap, topics=[TopicSpec(topic, 3)])
        bus.subscribe(
            Subscription(
                group=group,
                topics=[topic],
                handler=handler,
                retry=RetryPolicy(attempts=3, initial_backoff_s=0.05),
            )
        )
        return bus

    def batch(lo: int, hi: int) -> list[OutgoingRecord]:
        return [OutgoingRecord(topic, f"t:{i % 7}", f"m{i}".encode()) for i in range(lo, hi)]

    async def applied(n: int) -> bool:
        return len(await store.counts()) == n

    bus = make()
    await bus.start()
    await bus.publish(batch(0, 100))
    await eventually(lambda: applied(100), 60)

    kafka_control("kill")  # SIGKILL: no clean shutdown of the broker
    kafka_control("start")
    await _publish_with_retry(bus, batch(100, 200))  # the same (idempotent) producer goes on
    await eventually(lambda: applied(200), 90)
    await bus.stop()

    handled.clear()
    bus2 = make()  # a restarted consumer resumes from the committed offsets
    await bus2.start()
    await bus2.publish(batch(200, 250))
    await eventually(lambda: applied(250), 60)
    await bus2.stop()
    assert set((await store.counts()).values()) == {1}  # nothing applied twice
    assert set(handled) == {f"m{i}" for i in range(200, 250)}  # nothing before was redelivered


async def test_a_member_beyond_the_partition_count_is_still_ready(kafka_bootstrap: str) -> None:
    topic, group = unique("ready"), unique("g")

    async def ignore(r: Record) -> None:
        return None

    buses = [KafkaBus(kafka_bootstrap, topics=[TopicSpec(topic, 1)]) for _ in range(2)]
    for bus in buses:
        bus.subscribe(Subscription(group=group, topics=[topic], handler=ignore))
        await bus.start()
    try:
        await eventually(lambda: all(b.consumers_ready() for b in buses), 60)
        owners = [b for b in buses if any(c.assignment() for c in b._consumers.values())]
        assert len(owners) == 1  # one partition, two members: one idle member, still ready
    finally:
        for bus in buses:
            await bus.stop()
