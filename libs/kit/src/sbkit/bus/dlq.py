"""Dead-letter tools: list a DLQ, replay it to its topic (consumers' inboxes drop duplicates)."""

from __future__ import annotations

import asyncio
import time

from sbkit.bus.delivery import DLQ_HEADER_PREFIX, original_from_dlq
from sbkit.bus.ports import Bus, Record, Subscription

REPLAY_GROUP = "sb.dlq-replay"


def describe(record: Record) -> dict[str, str | int]:
    """A DLQ record's position and failure metadata, for listing."""
    meta: dict[str, str | int] = {"dlq_partition": record.partition, "dlq_offset": record.offset}
    for k, v in record.headers:
        if k.startswith(DLQ_HEADER_PREFIX):
            meta[k.removeprefix(DLQ_HEADER_PREFIX)] = v.decode(errors="replace")
    return meta


async def replay(bus: Bus, topic: str, *, timeout_s: float = 60.0) -> int:
    """Republish every DLQ record not replayed before to `topic`; returns how many.

    The replay group's committed offsets make a second replay publish nothing again, and the
    events keep their ids, so consumers that already applied one skip it.
    """
    dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    count = 0

    async def forward(record: Record) -> None:
        nonlocal count
        await bus.publish([original_from_dlq(record)])
        count += 1

    bus.subscribe(Subscription(group=REPLAY_GROUP, topics=(dlq,), handler=forward))
    await bus.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            lag = await bus.lag()
            if (
                bus.consumers_ready()
                and lag
                and not any(v for (g, t, _), v in lag.items() if g == REPLAY_GROUP and t == dlq)
            ):
                break
            await asyncio.sleep(0.2)
        else:
            raise TimeoutError(f"replay of {dlq} did not finish in {timeout_s}s")
    finally:
        await bus.stop()
    return count
