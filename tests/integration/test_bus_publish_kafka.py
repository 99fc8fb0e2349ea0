"""KafkaBus.publish on a real broker: records go out in one batch per partition, with the
partition `send` would choose, each key's records in order, however many batches they fill."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord
from tests.conftest import unique


async def _partitions_send_chooses(bootstrap: str, topic: str, keys: list[str]) -> dict[str, int]:
    """The partition a plain producer's `send` puts each key in."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        found = {}
        for key in keys:
            meta = await (await producer.send(topic, b"probe", key=key.encode()))
            found[key] = meta.partition
        return found
    finally:
        await producer.stop()


async def test_a_publish_of_several_batches_keeps_each_keys_partition_order_and_headers(
    kafka_bootstrap: str,
) -> None:
    topic = unique("publish")
    bus = KafkaBus(kafka_bootstrap, topics=[TopicSpec(topic, 6)])
    await bus.start()
    try:
        keys = [f"tenant:k{i}" for i in range(9)]
        big = b"x" * 200_000  # 5 of a key's records fill more than a 1 MiB batch
        records = [
            OutgoingRecord(
                topic, keys[n % 9], str(n).encode() + b":" + big, (("ce_id", str(n).encode()),)
            )
            for n in range(90)
        ]
        await bus.publish(records)
        expected = await _partitions_send_chooses(kafka_bootstrap, topic, keys)
        got = [r for r in await bus.read_topic(topic) if r.value != b"probe"]
    finally:
        await bus.stop()
    assert len(got) == 90
    for key in keys:
        mine = [r for r in got if r.key == key]
        numbers = [int(r.value.split(b":")[0]) for r in mine]
        assert numbers == [n for n in range(90) if n % 9 == keys.index(key)]  # publish order
        assert {r.partition for r in mine} == {expected[key]}  # where `send` puts the key
        assert all(
            dict(r.headers)["ce_id"] == str(n).encode() for r, n in zip(mine, numbers, strict=True)
        )


async def test_a_record_too_large_for_a_request_is_refused(kafka_bootstrap: str) -> None:
    topic = unique("publish-large")
    bus = KafkaBus(kafka_bootstrap, topics=[TopicSpec(topic, 3)])
    await bus.start()
    try:
        with pytest.raises(MessageSizeTooLargeError):
            await bus.publish([OutgoingRecord(topic, "tenant:k", b"x" * 3 * 1024 * 1024)])
    finally:
        await bus.stop()
