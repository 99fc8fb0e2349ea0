"""A rebalance during a batch (broker restart, member joining) must not end the Kafka consumer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.structs import ConsumerRecord

from sbkit.bus.kafka import KafkaBus
from sbkit.bus.ports import Record, Subscription

KEPT, REVOKED = TopicPartition("unit-rebalance", 0), TopicPartition("unit-rebalance", 1)


class RebalancedConsumer:
    """Answers like aiokafka after partition 1 was revoked while the batch was handled."""

    def __init__(self) -> None:
        self.committed: dict[TopicPartition, int] = {}
        self.sought: list[TopicPartition] = []

    def assignment(self) -> set[TopicPartition]:
        return {KEPT}

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.assignment(), "Partition is not assigned"  # aiokafka does this
        return 10

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.assignment():
            raise IllegalStateError(f"No current assignment for partition {tp}")
        self.sought.append(tp)

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self.committed.update({tp: om.offset for tp, om in offsets.items()})


def _records(tp: TopicPartition, n: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(tp.topic, tp.partition, i, 0, 0, b"k", b"v", None, 1, 1, [])
        for i in range(n)
    ]


async def test_a_partition_revoked_mid_batch_is_skipped_and_the_rest_committed() -> None:
    handled: list[tuple[int, int]] = []

    async def handler(r: Record) -> None:
        handled.append((r.partition, r.offset))
        await asyncio.sleep(0)

    sub = Subscription("g", ["unit-rebalance"], handler)
    consumer = RebalancedConsumer()
    batches = {KEPT: _records(KEPT, 3), REVOKED: _records(REVOKED, 2)}
    await KafkaBus("127.0.0.1:1")._handle_batches(sub, consumer, batches)
    assert consumer.committed == {KEPT: 3}  # the revoked one is left to its new owner
    assert len(handled) == 5


async def test_a_failed_partition_that_was_revoked_is_not_sought(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def handler(r: Record) -> None:
        if r.partition == REVOKED.partition:
            raise RuntimeError("DLQ publish failed: the broker is restarting")

    sub = Subscription("g", ["unit-rebalance"], handler)
    consumer = RebalancedConsumer()
    bus = KafkaBus("127.0.0.1:1")

    async def broker_down(records: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(bus, "publish", broker_down)
    batches = {KEPT: _records(KEPT, 1), REVOKED: _records(REVOKED, 1)}
    await bus._handle_batches(sub, consumer, batches)
    assert consumer.sought == [] and consumer.committed == {KEPT: 1}


async def test_a_consumer_task_that_ended_makes_the_bus_not_ready() -> None:
    bus = KafkaBus("127.0.0.1:1")
    assert bus.consumers_ready()  # nothing subscribed: nothing missing
    ended = asyncio.create_task(asyncio.sleep(0))
    await ended
    bus._tasks[id(ended)] = ended
    assert not bus.consumers_ready()  # /readyz must not say ready for a member that left
