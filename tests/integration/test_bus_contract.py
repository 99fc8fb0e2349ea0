"""The bus contract: the same behaviour from the local log and from a real Kafka broker."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from sbkit.bus.delivery import DLQ_HEADER_PREFIX
from sbkit.bus.dlq import replay
from sbkit.bus.ports import Bus, OutgoingRecord, PoisonMessage, Record, Subscription
from tests.conftest import unique
from tests.fakes.effects import EffectStore
from tests.integration.bus_fixtures import FAST_RETRY, BusFactory, eventually


def rec(topic: str, key: str, value: str) -> OutgoingRecord:
    return OutgoingRecord(topic=topic, key=key, value=value.encode(), headers=(("h", b"1"),))


async def test_records_of_one_key_arrive_in_publish_order(make_bus: BusFactory) -> None:
    topic = unique("order")
    bus = make_bus([topic])
    seen: dict[str, list[int]] = defaultdict(list)

    async def handler(r: Record) -> None:
        seen[r.key or ""].append(int(r.value))

    bus.subscribe(
        Subscription(group=unique("g"), topics=[topic], handler=handler, retry=FAST_RETRY)
    )
    await bus.start()
    keys = [f"tenant:k{i}" for i in range(12)]
    await bus.publish([rec(topic, keys[n % 12], str(n)) for n in range(600)])
    await eventually(lambda: sum(map(len, seen.values())) == 600)
    for key in keys:
        assert seen[key] == sorted(seen[key]) and len(seen[key]) == 50
    await bus.stop()


async def test_failing_handler_gets_the_record_again_and_succeeds(make_bus: BusFactory) -> None:
    topic = unique("retry")
    bus = make_bus([topic])
    calls: dict[str, int] = defaultdict(int)
    done: list[str] = []

    async def flaky(r: Record) -> None:
        calls[r.value.decode()] += 1
        if r.value == b"b" and calls["b"] < 3:
            raise ConnectionError("database briefly unavailable")
        done.append(r.value.decode())

    bus.subscribe(Subscription(group=unique("g"), topics=[topic], handler=flaky, retry=FAST_RETRY))
    await bus.start()
    await bus.publish([rec(topic, "t:1", v) for v in "abc"])
    await eventually(lambda: len(done) == 3)
    assert done == ["a", "b", "c"] and calls["b"] == 3
    assert await bus.read_topic(f"{topic}.dlq") == []
    await bus.stop()


async def test_record_goes_to_dlq_with_metadata_after_retry_budget(make_bus: BusFactory) -> None:
    topic = unique("dlq")
    group = unique("g")
    bus = make_bus([topic])
    done: list[str] = []

    async def handler(r: Record) -> None:
        if r.value == b"bad":
            raise RuntimeError("downstream keeps failing")
        done.append(r.value.decode())

    bus.subscribe(Subscription(group=group, topics=[topic], handler=handler, retry=FAST_RETRY))
    await bus.start()
    await bus.publish(
        [rec(topic, "t:1", "ok1"), rec(topic, "t:1", "bad"), rec(topic, "t:1", "ok2")]
    )
    await eventually(lambda: done == ["ok1", "ok2"])  # the partition did not stall
    dead = await _wait_dlq(bus, topic, 1)
    meta = {
        k.removeprefix(DLQ_HEADER_PREFIX): v.decode()
        for k, v in dead[0].headers
        if k.startswith(DLQ_HEADER_PREFIX)
    }
    assert dead[0].value == b"bad" and dead[0].key == "t:1" and dead[0].header("h") == b"1"
    assert meta["topic"] == topic and meta["attempts"] == "3" and meta["key"] == "t:1"
    assert meta["error.class"] == "RuntimeError" and "keeps failing" in meta["error.message"]
    assert meta["offset"] == "1" and meta["partition"].isdigit() and meta["first_failure"]
    await bus.stop()
    # the failed record was committed: the same group does not see it again
    again: list[bytes] = []
    bus2 = make_bus([topic])

    async def record_all(r: Record) -> None:
        again.append(r.value)

    bus2.subscribe(Subscription(group=group, topics=[topic], handler=record_all))
    await bus2.start()
    await bus2.publish([rec(topic, "t:1", "after")])
    await eventually(lambda: again == [b"after"])
    await bus2.stop()


async def test_poison_message_goes_to_dlq_without_retries(make_bus: BusFactory) -> None:
    topic = unique("poison")
    bus = make_bus([topic])
    calls = 0

    async def handler(r: Record) -> None:
        nonlocal calls
        calls += 1
        raise PoisonMessage("not a valid event")

    bus.subscribe(
        Subscription(group=unique("g"), topics=[topic], handler=handler, retry=FAST_RETRY)
    )
    await bus.start()
    await bus.publish([rec(topic, "t:1", "{not json")])
    dead = await _wait_dlq(bus, topic, 1)
    assert calls == 1 and dead[0].header("dlq.attempts") == b"1"
    assert dead[0].header("dlq.error.class") == b"PoisonMessage"
    await bus.stop()


async def test_consumer_killed_between_db_commit_and_offset_commit_applies_once(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic, group = unique("crash"), unique("g")
    bus = make_bus([topic])
    calls = 0
    committed_one = asyncio.Event()
    hang = asyncio.Event()

    async def handler(r: Record) -> None:
        nonlocal calls
        calls += 1
        await effect_store.apply(r.value.decode())
        if r.value == b"e5":
            committed_one.set()
            await hang.wait()  # the process dies here: effect committed, offset not

    bus.subscribe(Subscription(group=group, topics=[topic], handler=handler, retry=FAST_RETRY))
    await bus.start()
    await bus.publish([rec(topic, "t:1", f"e{i}") for i in range(10)])
    await asyncio.wait_for(committed_one.wait(), 40)
    await bus.abort()  # kill -9: nothing more committed
    calls_before = calls
    bus2 = make_bus([topic])
    bus2.subscribe(Subscription(group=group, topics=[topic], handler=handler, retry=FAST_RETRY))
    hang.set()
    await bus2.start()

    async def all_applied() -> bool:
        return len(await effect_store.counts()) == 10

    await eventually(all_applied)
    await bus2.stop()
    assert calls > calls_before + 4  # e5 (at least) was delivered again after the crash
    assert set((await effect_store.counts()).values()) == {1}


async def test_dlq_replay_redelivers_once_and_twice_replaying_adds_nothing(
    make_bus: BusFactory, effect_store: EffectStore
) -> None:
    topic, group = unique("replay"), unique("g")
    broken = True
    bus = make_bus([topic])

    async def handler(r: Record) -> None:
        if broken and r.value.startswith(b"x"):
            raise PoisonMessage("schema not deployed yet")
        await effect_store.apply(r.value.decode())

    bus.subscribe(Subscription(group=group, topics=[topic], handler=handler, retry=FAST_RETRY))
    await bus.start()
    await bus.publish([rec(topic, f"t:{i}", f"x{i}") for i in range(5)] + [rec(topic, "t:9", "ok")])
    await _wait_dlq(bus, topic, 5)
    broken = False  # the fix is deployed
    assert await replay(make_bus([topic]), topic) == 5
    assert await replay(make_bus([topic]), topic) == 0  # nothing replayed twice

    async def six() -> bool:
        return len(await effect_store.counts()) == 6

    await eventually(six)
    # a replay of records that were already applied changes nothing (inbox)
    await bus.publish([rec(topic, f"t:{i}", f"x{i}") for i in range(5)])
    await asyncio.sleep(1.0)
    assert set((await effect_store.counts()).values()) == {1}
    await bus.stop()


async def test_dlq_replay_of_records_that_still_fail_ends_instead_of_feeding_itself(
    make_bus: BusFactory,
) -> None:
    """Replayed poison is dead-lettered again while the replay runs: the replay stops at the
    DLQ's end as it was at the start, and leaves the new DLQ records for a later replay."""
    topic, group = unique("refail"), unique("g")
    bus = make_bus([topic])

    async def handler(r: Record) -> None:
        raise PoisonMessage("still malformed")

    bus.subscribe(Subscription(group=group, topics=[topic], handler=handler, retry=FAST_RETRY))
    await bus.start()
    await bus.publish([rec(topic, f"t:{i}", f"x{i}") for i in range(5)])
    await _wait_dlq(bus, topic, 5)
    replayed = await replay(make_bus([topic]), topic, timeout_s=15)
    # the five, plus at most what the same fetch brought along (not a loop until the timeout)
    assert 5 <= replayed < 15
    await _wait_dlq(bus, topic, 5 + replayed)  # each replayed record was dead-lettered again
    await bus.stop()


async def _wait_dlq(bus: Bus, topic: str, n: int) -> list[Record]:
    found: list[Record] = []

    async def check() -> bool:
        nonlocal found
        found = await bus.read_topic(f"{topic}.dlq")
        return len(found) >= n

    await eventually(check)
    return found


async def test_stop_finishes_the_record_in_hand_and_commits_it(make_bus: BusFactory) -> None:
    topic, group = unique("drain"), unique("g")
    bus = make_bus([topic])
    started, finished = asyncio.Event(), []

    async def slow(r: Record) -> None:
        started.set()
        await asyncio.sleep(0.5)  # in flight when shutdown begins
        finished.append(r.value)

    bus.subscribe(Subscription(group=group, topics=[topic], handler=slow, retry=FAST_RETRY))
    await bus.start()
    await bus.publish([rec(topic, "t:1", "only")])
    await asyncio.wait_for(started.wait(), 40)
    await bus.stop()
    assert finished == [b"only"]  # drained, not cut off
    seen: list[bytes] = []
    bus2 = make_bus([topic])

    async def record_all(r: Record) -> None:
        seen.append(r.value)

    bus2.subscribe(Subscription(group=group, topics=[topic], handler=record_all))
    await bus2.start()
    await bus2.publish([rec(topic, "t:1", "next")])
    await eventually(lambda: seen == [b"next"])  # "only" was committed before stopping
    await bus2.stop()


async def test_consumer_lag_is_exported(make_bus: BusFactory) -> None:
    from prometheus_client import REGISTRY

    topic, group = unique("lag"), unique("g")
    bus = make_bus([topic])
    gate = asyncio.Event()

    async def blocked(r: Record) -> None:
        await gate.wait()

    bus.subscribe(Subscription(group=group, topics=[topic], handler=blocked))
    await bus.start()
    await bus.publish([rec(topic, "t:1", str(i)) for i in range(20)])

    async def lagging() -> bool:
        return sum((await bus.lag()).values()) > 0

    await eventually(lagging)
    gate.set()

    def gauge_zero() -> bool:
        values = [
            REGISTRY.get_sample_value(
                "sb_bus_consumer_lag", {"group": group, "topic": topic, "partition": str(p)}
            )
            for p in range(3)
        ]
        return any(v is not None for v in values) and all(not v for v in values)

    await eventually(gauge_zero)
    await bus.stop()
