"""Dead-letter tools: list a DLQ, replay it to its topic (consumers' inboxes drop duplicates)."""

from __future__ import annotations

import asyncio
import contextlib
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
    """Republish the DLQ records present when the replay starts (and not replayed before) to
    `topic`; returns how many.

    The replay group's committed offsets make a second replay publish nothing again, and the
    events keep their ids, so consumers that already applied one skip it. A record that fails
    again after its replay is dead-lettered anew while this runs: the replay stops at the
    DLQ's end as it was at the start (at most the rest of the fetch in hand goes along) and
    leaves the new ones for a later replay, instead of feeding them back until the timeout.
    """
    dlq = topic if topic.endswith(".dlq") else f"{topic}.dlq"
    goal: dict[int, int] = {}  # partition → its last offset when the replay starts
    for record in await bus.read_topic(dlq):
        goal[record.partition] = max(goal.get(record.partition, -1), record.offset)
    seen: dict[int, int] = {}
    reached = asyncio.Event()
    count = 0

    def covered(p: int, lag: dict[tuple[str, str, int], int] | None = None) -> bool:
        # forwarded up to the start-time end, or committed past it by an earlier replay
        return seen.get(p, -1) >= goal[p] or (lag or {}).get((REPLAY_GROUP, dlq, p)) == 0

    async def forward(record: Record) -> None:
        nonlocal count
        await bus.publish([original_from_dlq(record)])
        seen[record.partition] = record.offset
        count += 1
        if all(covered(p) for p in goal):
            reached.set()

    bus.subscribe(Subscription(group=REPLAY_GROUP, topics=(dlq,), handler=forward))
    await bus.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reached.wait(), 0.2)
            if reached.is_set():
                break
            if bus.consumers_ready():
                lag = await bus.lag()
                if any(t == dlq for _, t, _ in lag) and all(covered(p, lag) for p in goal):
                    break
        else:
            raise TimeoutError(f"replay of {dlq} did not finish in {timeout_s}s")
    finally:
        await bus.stop()  # finishes the fetch in hand and commits what was forwarded
    return count
