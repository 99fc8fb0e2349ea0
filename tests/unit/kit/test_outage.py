"""A consumer waits out its database's outage: good records never reach the DLQ because of it."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError, OperationalError

from sbcontracts.catalog import encode
from sbcontracts.envelope import new_event
from sbcontracts.events.control import TenantCreated
from sbkit.bus.delivery import handle_with_retry
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Handler, PoisonMessage, Record, RetryPolicy, Subscription
from sbkit.db.outage import outage_guard
from sbkit.db.tables import KitTables
from sbkit.runtime import ServiceRuntime
from sbkit.settings import KitSettings

RECORD = Record("unit-outage", 0, 7, "k", b"{}")
DOWN = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


class Database:
    """A database that is down for the first `down_for` probes, then answers."""

    def __init__(self, down_for: int) -> None:
        self.probes = 0
        self.down_for = down_for

    async def ready(self) -> bool:
        self.probes += 1
        return self.probes > self.down_for


def flaky(db: Database, calls: list[int]) -> Handler:
    """A handler that fails while the database is down, and succeeds after."""

    async def handle(record: Record) -> None:
        calls.append(record.offset)
        if db.probes <= db.down_for:
            raise DOWN

    return handle


async def test_an_outage_longer_than_the_retry_budget_sends_nothing_to_the_dlq() -> None:
    db = Database(down_for=6)
    calls: list[int] = []
    sub = Subscription(
        "g",
        ["unit-outage"],
        outage_guard(flaky(db, calls), ready=db.ready, poison=(PoisonMessage,), consumer="c"),
        retry=RetryPolicy(attempts=2, initial_backoff_s=0.0),
    )
    assert await handle_with_retry(sub, RECORD) is None  # handled, not dead-lettered
    assert len(calls) >= 2 and db.probes > db.down_for


async def test_without_the_guard_the_same_outage_dead_letters_a_good_record() -> None:
    db = Database(down_for=6)
    calls: list[int] = []
    sub = Subscription(
        "g",
        ["unit-outage"],
        flaky(db, calls),
        retry=RetryPolicy(attempts=2, initial_backoff_s=0.0),
    )
    failure = await handle_with_retry(sub, RECORD)
    assert failure is not None and failure.attempts == 2  # what the fault test found


async def test_a_failure_while_the_database_answers_still_counts_against_the_budget() -> None:
    db = Database(down_for=0)

    async def broken(record: Record) -> None:
        raise RuntimeError("a bug, not an outage")

    guarded = outage_guard(broken, ready=db.ready, poison=(PoisonMessage,), consumer="c")
    with pytest.raises(RuntimeError):
        await guarded(RECORD)
    assert db.probes == 1


async def test_poison_goes_straight_through_without_asking_the_database() -> None:
    db = Database(down_for=100)

    async def poison(record: Record) -> None:
        raise PoisonMessage("malformed")

    guarded = outage_guard(poison, ready=db.ready, poison=(PoisonMessage,), consumer="c")
    with pytest.raises(PoisonMessage):
        await guarded(RECORD)
    assert db.probes == 0


async def test_a_shutdown_ends_the_wait() -> None:
    db = Database(down_for=10**9)
    guarded = outage_guard(flaky(db, []), ready=db.ready, poison=(PoisonMessage,), consumer="c")
    task = asyncio.ensure_future(guarded(RECORD))  # a handler returns an Awaitable, not a coroutine
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_service_consumers_are_guarded_by_their_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata = MetaData()
    runtime = ServiceRuntime(
        KitSettings(service="unit", database_url=f"sqlite+aiosqlite:///{tmp_path}/u.db"),
        metadata=metadata,
        tables=KitTables(metadata),
        migrations=tmp_path,
        bus=LocalBus(":memory:"),
    )
    db, seen = Database(down_for=3), []

    async def handle(uow: Any, event: Any) -> None:
        seen.append(event.id)
        if db.probes <= db.down_for:
            raise DOWN

    monkeypatch.setattr(runtime, "db_ready", db.ready)
    runtime.consume("c", ["unit-outage"], handle, **_per_record(runtime))
    async with runtime.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    event = new_event(TenantCreated(tenant_id="t", name="t"), tenant_id="t", source="unit")
    record = Record("unit-outage", 0, 0, "k", encode(event))
    [sub] = runtime._subscriptions
    assert await handle_with_retry(sub, record) is None
    assert seen[-1] == event.id and db.probes > db.down_for
    await runtime.engine.dispose()


def _per_record(runtime: ServiceRuntime) -> dict[str, Any]:
    """One transaction per record, whichever consume signature the kit has."""
    return {"batch": False} if "batch" in inspect.signature(runtime.consume).parameters else {}


DEADLOCK = DBAPIError("UPDATE", {}, type("DeadlockDetected", (Exception,), {"sqlstate": "40P01"})())


async def test_deadlocks_beyond_the_retry_budget_do_not_dead_letter_a_good_record() -> None:
    db, calls = Database(down_for=0), []

    async def deadlocks_five_times(record: Record) -> None:
        calls.append(record.offset)
        if len(calls) <= 5:
            raise DEADLOCK

    sub = Subscription(
        "g",
        ["unit-outage"],
        outage_guard(deadlocks_five_times, ready=db.ready, poison=(PoisonMessage,), consumer="c"),
        retry=RetryPolicy(attempts=2, initial_backoff_s=0.0),
    )
    assert await handle_with_retry(sub, RECORD) is None  # handled, not dead-lettered
    assert len(calls) == 6
