"""Batch delivery on the bus: chunking, fallback to single records, cancellation passes through."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from sbkit.bus.delivery import chunks, handle_chunk
from sbkit.bus.ports import OutgoingRecord, Record, RetryPolicy, Subscription

NO_RETRY = RetryPolicy(attempts=1)


def records(n: int) -> list[Record]:
    return [Record("unit-batches", 0, i, "k", str(i).encode()) for i in range(n)]


def sub(
    single: list[int], batches: list[list[int]], *, fail: BaseException | None = None
) -> Subscription:
    async def one(r: Record) -> None:
        single.append(r.offset)

    async def many(rs: Sequence[Record]) -> None:
        batches.append([r.offset for r in rs])
        if fail is not None:
            raise fail

    return Subscription("g", ["unit-batches"], one, retry=NO_RETRY, batch_handler=many, max_batch=4)


async def nowhere(_: Sequence[OutgoingRecord]) -> None:
    raise AssertionError("nothing should reach the DLQ")


def test_polled_records_are_cut_into_batches_of_at_most_max_batch() -> None:
    s = sub([], [])
    assert [[r.offset for r in c] for c in chunks(s, records(10))] == [
        [0, 1, 2, 3], [4, 5, 6, 7], [8, 9],
    ]  # fmt: skip
    plain = Subscription("g", ["unit-batches"], s.handler)  # no batch handler: one record at a time
    assert [len(c) for c in chunks(plain, records(3))] == [1, 1, 1]


async def test_a_failed_batch_is_handled_again_record_by_record() -> None:
    single: list[int] = []
    batches: list[list[int]] = []
    await handle_chunk(sub(single, batches, fail=RuntimeError("deadlock")), records(3), nowhere)
    assert batches == [[0, 1, 2]] and single == [0, 1, 2]


async def test_cancellation_inside_a_batch_is_not_swallowed() -> None:
    single: list[int] = []
    batches: list[list[int]] = []
    s = sub(single, batches, fail=asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await handle_chunk(s, records(3), nowhere)
    assert single == []  # shutting down: no fallback, nothing committed
