"""Group commit: concurrent submissions share a transaction; nobody is answered before its commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Self, cast

import pytest
from sqlalchemy.exc import OperationalError

from ingest.domain.channels import ChannelConfig
from ingest.entrypoints.deps import ChannelCache
from ingest.service_layer.group_commit import GroupCommit
from sbkit.db.uow import UnitOfWork


class FakeUow:
    """Counts commits; `fail` makes the next commits raise a transient database error."""

    commits: list[list[str]] = []
    fail = 0

    def __init__(self) -> None:
        self.stored: list[str] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def commit(self) -> None:
        await asyncio.sleep(0.01)  # the WAL flush: others arrive meanwhile
        if FakeUow.fail:
            FakeUow.fail -= 1
            raise OperationalError("COMMIT", {}, Exception("connection lost"))
        FakeUow.commits.append(self.stored)


async def store(uow: UnitOfWork, items: Sequence[str]) -> list[str]:
    cast(Any, uow).stored.extend(items)
    return [f"ok:{i}" for i in items]


@pytest.fixture(autouse=True)
def reset() -> None:
    FakeUow.commits, FakeUow.fail = [], 0


def group(in_flight: int = 1) -> GroupCommit[str, str]:
    return GroupCommit(cast(Any, FakeUow), store, in_flight=in_flight)


async def test_concurrent_requests_share_few_commits_and_each_gets_its_own_result() -> None:
    g = group()
    results = await asyncio.gather(*[g.submit(f"r{i}") for i in range(50)])
    assert results == [f"ok:r{i}" for i in range(50)]
    assert sorted(r for c in FakeUow.commits for r in c) == sorted(f"r{i}" for i in range(50))
    assert len(FakeUow.commits) <= 3  # the first alone, then everyone who arrived meanwhile


async def test_an_answer_comes_only_after_its_commit() -> None:
    g = group()
    first = asyncio.ensure_future(g.submit("a"))
    await asyncio.sleep(0.001)
    assert not first.done() and FakeUow.commits == []
    assert await first == "ok:a" and FakeUow.commits == [["a"]]


async def test_a_failed_commit_is_retried_and_a_lasting_failure_reaches_every_request() -> None:
    FakeUow.fail = 1
    assert await group().submit("a") == "ok:a"  # transient: retried in a new transaction
    FakeUow.fail = 10
    g = group()
    outcomes = await asyncio.gather(g.submit("b"), g.submit("c"), return_exceptions=True)
    assert all(isinstance(o, OperationalError) for o in outcomes)
    assert [c for c in FakeUow.commits if "b" in c or "c" in c] == []


async def test_a_cancelled_request_does_not_cancel_its_group() -> None:
    g = group()
    waiting = asyncio.ensure_future(g.submit("a"))
    await asyncio.sleep(0.001)
    waiting.cancel()
    await g.drain()
    assert FakeUow.commits == [["a"]]  # committed: a provider retry finds it as a duplicate


async def test_concurrent_channel_misses_share_one_lookup() -> None:
    cache, calls = ChannelCache(), []

    async def fetch() -> ChannelConfig:
        calls.append(1)
        await asyncio.sleep(0.01)
        return cast(ChannelConfig, object())

    key = ("t", "whatsapp", "c")
    found = await asyncio.gather(*[cache.load(key, fetch) for _ in range(20)])
    assert len(calls) == 1 and len({id(f) for f in found}) == 1
    assert cache.get(key) is found[0]


async def test_a_group_cancelled_at_shutdown_releases_its_waiters() -> None:
    g = group()
    waiting = asyncio.ensure_future(g.submit("a"))
    await asyncio.sleep(0.001)
    for task in list(g._running):
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 1)
