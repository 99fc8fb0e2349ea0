"""The stall rule and the await chain a stalled consumer is logged with."""

from __future__ import annotations

import asyncio

from sbkit.bus.watchdog import GroupProgress, await_chain, client_tasks

AT = {("t", 0): 5, ("t", 1): 9}


def test_a_group_is_stalled_only_when_records_wait_and_its_offsets_stand_still() -> None:
    p = GroupProgress(stall_after_s=60)
    assert not p.observe(AT, lag=3, now=0)  # first look: nothing to compare with
    assert not p.observe(AT, lag=3, now=59)
    assert p.observe(AT, lag=3, now=60) and p.stalled
    assert not p.observe(AT, lag=3, now=100)  # the replacement gets a full period
    assert p.observe(AT, lag=3, now=120) and p.stalls == 2
    assert not p.observe({("t", 0): 6, ("t", 1): 9}, lag=2, now=121)  # it moved
    assert not p.stalled


def test_an_idle_group_is_never_stalled() -> None:
    p = GroupProgress(stall_after_s=60)
    for now in range(0, 600, 10):
        assert not p.observe(AT, lag=0, now=now)
    assert not p.stalled and p.stalls == 0


def test_the_clock_starts_at_the_last_look_that_found_the_group_idle_or_moving() -> None:
    p = GroupProgress(stall_after_s=60)
    p.observe(AT, lag=0, now=0)
    p.observe(AT, lag=0, now=10)
    assert not p.observe(AT, lag=4, now=20)  # records arrived after the look at 10
    assert not p.observe(AT, lag=4, now=69)
    assert p.observe(AT, lag=4, now=70)


async def test_the_await_chain_reaches_the_innermost_await_through_a_gather() -> None:
    never = asyncio.Event()

    async def stuck_here() -> None:
        await never.wait()

    async def fine() -> None:
        await asyncio.sleep(30)

    async def batch() -> None:
        await asyncio.gather(stuck_here(), fine())

    task = asyncio.create_task(batch())
    await asyncio.sleep(0.01)
    try:
        chain = await_chain(task)
        text = "\n".join(chain)
        assert "in batch" in chain[0]
        assert "gather of 2:" in text
        assert "in stuck_here" in text and "in wait" in text  # Event.wait, where it hangs
        assert "in fine" in text
    finally:
        task.cancel()


async def test_other_tasks_in_the_library_are_listed_once_per_distinct_chain() -> None:
    never = asyncio.Event()

    async def holds_the_lock() -> None:
        await never.wait()

    async def elsewhere() -> None:
        await asyncio.sleep(30)

    mine = asyncio.create_task(holds_the_lock())
    twins = [asyncio.create_task(holds_the_lock()) for _ in range(2)]
    other = asyncio.create_task(elsewhere())
    await asyncio.sleep(0.01)
    try:
        listed = client_tasks(mine, library="in holds_the_lock")
        assert listed[0] == "2 x:"  # the two twins, not the skipped task, not `elsewhere`
        assert not any("in elsewhere" in line for line in listed)
        assert sum(line.endswith(" x:") for line in listed) == 1
    finally:
        for t in [mine, *twins, other]:
            t.cancel()
