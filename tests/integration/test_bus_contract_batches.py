"""The bus contract for batch consumers, on the local log + SQLite and on Kafka + PostgreSQL.

A batch handler gets a partition's polled records at once; the kit's idempotent consumer
applies them in one transaction with one inbox statement, and any failure falls back to the
per-record path, so what is applied (and what reaches the DLQ) is the same as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, insert

from sbcontracts.catalog import decode, encode
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.control import TenantCreated
from sbkit.bus.ports import OutgoingRecord, PoisonMessage, Record, Subscription
from sbkit.consumer import batch_handler, record_handler
from sbkit.db.uow import UnitOfWork
from tests.conftest import unique
from tests.fakes.effects import EffectStore, effects
from tests.integration.bus_fixtures import FAST_RETRY, BusFactory, eventually

KEY = "t1:one-key"  # one key, one partition: the records arrive in one poll, in order


def ev(name: str) -> CloudEvent[Any]:
    return new_event(TenantCreated(tenant_id="t1", name=name), tenant_id="t1", source="test")


def out(topic: str, event: CloudEvent[Any]) -> OutgoingRecord:
    return OutgoingRecord(topic=topic, key=KEY, value=encode(event))


async def preload(make_bus: BusFactory, topic: str, events: Sequence[CloudEvent[Any]]) -> None:
    """Publish before the consumer starts, so its first poll finds all records at once."""
    producer = make_bus([topic])
    await producer.start()
    await producer.publish([out(topic, e) for e in events])
    await producer.stop()


class Consumer:
    """The kit's idempotent consumer over the effect store, with hooks to observe and break it."""

    def __init__(self, store: EffectStore, topic: str, group: str) -> None:
        self.store, self.topic, self.group = store, topic, group
        self.batches: list[list[str]] = []  # event names per batch-handler call
        self.partitions: list[set[int]] = []  # partitions per batch-handler call
        self.commits_per_batch: list[int] = []
        self.single_calls = 0
        self.poison: set[str] = set()
        self.fail_once: set[str] = set()
        self.hang_at: str | None = None
        self.hanging = asyncio.Event()
        self.commits = 0
        event.listen(store.engine.sync_engine, "commit", self._count)

    def _count(self, _conn: object) -> None:
        self.commits += 1

    async def apply(self, uow: UnitOfWork, e: CloudEvent[Any]) -> None:
        name = e.data.name
        await uow.session.execute(insert(effects).values(event_id=name))
        if name in self.poison:
            raise PoisonMessage(f"{name} can never apply")
        if name in self.fail_once:
            self.fail_once.discard(name)
            raise ConnectionError("database briefly unavailable")
        if name == self.hang_at:
            self.hanging.set()
            await asyncio.Event().wait()  # the process dies here, inside the transaction

    def subscription(self, max_batch: int = 500) -> Subscription:
        single = record_handler(self.store.uow, consumer="c", handle=self.apply)
        many = batch_handler(self.store.uow, consumer="c", handle=self.apply)

        async def counted_single(r: Record) -> None:
            self.single_calls += 1
            await single(r)

        async def observed_batch(records: Sequence[Record]) -> None:
            self.batches.append([decode(r.value).data.name for r in records])
            self.partitions.append({r.partition for r in records})
            before = self.commits
            try:
                await many(records)
            finally:
                self.commits_per_batch.append(self.commits - before)

        return Subscription(
            group=self.group,
            topics=[self.topic],
            handler=counted_single,
            retry=FAST_RETRY,
            batch_handler=observed_batch,
            max_batch=max_batch,
        )

    async def applied(self) -> dict[str, int]:
        return await self.store.counts()


async def test_a_partitions_polled_records_are_applied_in_one_transaction(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic = unique("batch")
    bus = make_bus([topic])
    consumer = Consumer(effect_store, topic, unique("g"))
    bus.subscribe(consumer.subscription(max_batch=8))
    names = [f"e{i:02d}" for i in range(30)]
    await preload(make_bus, topic, [ev(n) for n in names])
    await bus.start()

    async def all_applied() -> bool:
        return len(await consumer.applied()) == 30

    await eventually(all_applied)
    await bus.stop()
    assert set((await consumer.applied()).values()) == {1}
    assert [n for batch in consumer.batches for n in batch] == names  # in order, each once
    assert all(len(b) <= 8 for b in consumer.batches) and max(map(len, consumer.batches)) > 1
    assert consumer.commits_per_batch == [1] * len(consumer.batches)  # one transaction each
    assert consumer.single_calls == 0


async def test_poison_record_inside_a_batch_goes_alone_to_the_dlq(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic = unique("batch-poison")
    bus = make_bus([topic])
    consumer = Consumer(effect_store, topic, unique("g"))
    consumer.poison = {"e5"}
    bus.subscribe(consumer.subscription())
    await preload(make_bus, topic, [ev(f"e{i}") for i in range(10)])
    await bus.start()

    async def dead_one() -> bool:
        return len(await bus.read_topic(f"{topic}.dlq")) == 1

    async def nine_applied() -> bool:
        return len(await consumer.applied()) == 9

    await eventually(dead_one)
    await eventually(nine_applied)
    await asyncio.sleep(0.3)
    await bus.stop()
    dead = await bus.read_topic(f"{topic}.dlq")
    assert len(dead) == 1 and dead[0].header("dlq.error.class") == b"PoisonMessage"
    assert dead[0].header("dlq.attempts") == b"1"
    applied = await consumer.applied()
    assert "e5" not in applied and set(applied.values()) == {1}
    assert max(map(len, consumer.batches)) > 1  # the poison really was inside a batch


async def test_error_after_some_handlers_ran_rolls_the_batch_back_and_applies_once(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic = unique("batch-transient")
    bus = make_bus([topic])
    consumer = Consumer(effect_store, topic, unique("g"))
    consumer.fail_once = {"e6"}
    bus.subscribe(consumer.subscription())
    await preload(make_bus, topic, [ev(f"e{i}") for i in range(10)])
    await bus.start()

    async def ten_applied() -> bool:
        return len(await consumer.applied()) == 10

    await eventually(ten_applied)
    await asyncio.sleep(0.3)
    await bus.stop()
    assert set((await consumer.applied()).values()) == {1}  # e0..e5 not applied twice
    assert 0 in consumer.commits_per_batch and consumer.single_calls >= 1  # the fallback ran
    assert await bus.read_topic(f"{topic}.dlq") == []


async def test_crash_mid_batch_applies_nothing_of_it_and_it_is_redelivered(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic, group = unique("batch-crash"), unique("g")
    bus = make_bus([topic])
    consumer = Consumer(effect_store, topic, group)
    consumer.hang_at = "e6"
    bus.subscribe(consumer.subscription())
    await preload(make_bus, topic, [ev(f"e{i}") for i in range(10)])
    await bus.start()
    await asyncio.wait_for(consumer.hanging.wait(), 40)
    in_flight = consumer.batches[-1]
    assert in_flight.index("e6") > 0  # handlers of earlier records of the batch had run
    await bus.abort()  # kill -9 with the batch's transaction open
    assert not set(in_flight) & set(await consumer.applied())  # nothing of it committed
    consumer.hang_at = None
    bus2 = make_bus([topic])
    bus2.subscribe(consumer.subscription())
    await bus2.start()

    async def ten_applied() -> bool:
        return len(await consumer.applied()) == 10

    await eventually(ten_applied)
    await bus2.stop()
    assert set((await consumer.applied()).values()) == {1}


async def test_duplicates_within_and_across_batches_are_applied_once(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic = unique("batch-dup")
    bus = make_bus([topic])
    consumer = Consumer(effect_store, topic, unique("g"))
    bus.subscribe(consumer.subscription())
    a, b, c, d = ev("a"), ev("b"), ev("c"), ev("d")
    await preload(make_bus, topic, [a, b, a, c, b])
    await bus.start()

    async def three() -> bool:
        return len(await consumer.applied()) == 3

    await eventually(three)
    await bus.publish([out(topic, e) for e in (c, a, d)])  # redelivered plus one new

    async def four() -> bool:
        return len(await consumer.applied()) == 4

    await eventually(four)
    await asyncio.sleep(0.3)
    await bus.stop()
    assert await consumer.applied() == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert consumer.single_calls == 0  # the duplicates did not need the fallback


def spread(keys: int, per_key: int) -> list[OutgoingRecord]:
    """Records of several keys (so of several partitions), each key's in order."""
    return [
        OutgoingRecord(topic="", key=f"t1:k{k}", value=encode(ev(f"k{k}-{i}")))
        for i in range(per_key)
        for k in range(keys)
    ]


async def preload_spread(make_bus: BusFactory, topic: str, records: list[OutgoingRecord]) -> None:
    producer = make_bus([topic])
    await producer.start()
    await producer.publish([OutgoingRecord(topic, r.key, r.value) for r in records])
    await producer.stop()


def keys_of(batch: list[str]) -> set[str]:
    return {name.split("-")[0] for name in batch}


@pytest.mark.parametrize("backend", ["kafka"])
async def test_a_poll_of_several_partitions_is_one_batch_with_each_keys_order_kept(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    """On Kafka, a poll that brought a few records of several partitions is one transaction
    (the steady trickle of a live system), not one per partition."""
    topic = unique("batch-spread")
    await preload_spread(make_bus, topic, spread(keys=6, per_key=3))
    bus = make_bus([topic])
    consumer = Consumer(effect_store, topic, unique("g"))
    bus.subscribe(consumer.subscription())
    await bus.start()

    async def all_applied() -> bool:
        return len(await consumer.applied()) == 18

    await eventually(all_applied)
    await bus.stop()
    assert set((await consumer.applied()).values()) == {1}
    assert len(consumer.partitions[0]) > 1 and len(keys_of(consumer.batches[0])) == 6  # all
    assert consumer.commits_per_batch[0] == 1  # in one transaction
    for batch in consumer.batches:
        for k in keys_of(batch):
            mine = [n for n in batch if n.startswith(f"{k}-")]
            assert mine == sorted(mine)  # a key's records in their order
    assert consumer.single_calls == 0


@pytest.mark.parametrize("backend", ["kafka"])
async def test_a_poison_record_fails_the_several_partition_batch_and_only_it_is_dead(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic = unique("batch-spread-poison")
    await preload_spread(make_bus, topic, spread(keys=6, per_key=3))
    bus = make_bus([topic])
    consumer = Consumer(effect_store, topic, unique("g"))
    consumer.poison = {"k2-1"}
    bus.subscribe(consumer.subscription())
    await bus.start()

    async def settled() -> bool:
        dead = await bus.read_topic(f"{topic}.dlq")
        return len(dead) == 1 and len(await consumer.applied()) == 17

    await eventually(settled)
    await asyncio.sleep(0.3)
    await bus.stop()
    applied = await consumer.applied()
    assert "k2-1" not in applied and set(applied.values()) == {1}
    first = consumer.batches[0]
    assert len(consumer.partitions[0]) > 1 and len(keys_of(first)) == 6
    assert consumer.commits_per_batch[0] == 0  # tried, rolled back
    # then partition by partition: only the poison's partition went one record at a time
    poisoned = next(b for b in consumer.batches[1:] if "k2-1" in b)
    assert consumer.single_calls == len(poisoned) < 18
