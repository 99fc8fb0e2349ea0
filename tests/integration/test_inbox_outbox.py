"""Inbox and transactional outbox on SQLite and real PostgreSQL, including crashes around publish."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sbcontracts.catalog import decode
from sbcontracts.envelope import new_event
from sbcontracts.events.control import TenantCreated
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord
from sbkit.db.relay import OutboxRelay
from tests.fakes.effects import EffectStore, effects, kit


async def _store(engine: AsyncEngine) -> EffectStore:
    store = EffectStore(engine)
    await store.create()
    return store


async def _emit(store: EffectStore, names: Sequence[str], *, commit: bool = True) -> None:
    async with store.uow() as uow:
        for name in names:
            event = new_event(
                TenantCreated(tenant_id="t1", name=name), tenant_id="t1", source="test"
            )
            await uow.emit(event, key=f"t1:{name[0]}")
            await uow.session.execute(insert(effects).values(event_id=name))
        if commit:
            await uow.commit()


async def _outbox_rows(store: EffectStore) -> int:
    async with store.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(kit.outbox)) or 0)


def _names(bus: LocalBus) -> list[str]:
    return [decode(r.value).data.name for r in bus.read_all("sb.control.v1")]


async def test_inbox_claims_an_event_once_and_forgets_a_rolled_back_claim(
    engine: AsyncEngine,
) -> None:
    store = await _store(engine)
    async with store.uow() as uow:
        assert not await uow.seen(consumer="c", event_id="e1")  # rolled back: not remembered
    assert await store.apply("e1") is True
    assert await store.apply("e1") is False
    assert await store.apply("e1", consumer="other") is True  # inbox is per consumer
    assert await store.counts() == {"e1": 2}


async def test_outbox_publishes_committed_events_only_and_empties(engine: AsyncEngine) -> None:
    store = await _store(engine)
    bus = LocalBus(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(store.sessions, kit, bus, service="test")
    await _emit(store, ["rolled-back"], commit=False)
    await _emit(store, ["a1", "a2", "b1"])
    assert await relay.relay_once() == 3
    assert _names(bus) == ["a1", "a2", "b1"]
    record = bus.read_all("sb.control.v1")[0]
    assert record.header("ce_type") == b"com.switchboard.control.tenant.created"
    assert record.key == "t1:a" and record.header("content-type") == b"application/cloudevents+json"
    assert await _outbox_rows(store) == 0 and await relay.relay_once() == 0


async def test_crash_between_commit_and_publish_loses_nothing(engine: AsyncEngine) -> None:
    store = await _store(engine)
    await _emit(store, [f"n{i}" for i in range(20)])
    # the process died before its relay ran: a new process's relay publishes everything
    bus = LocalBus(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(EffectStore(engine).sessions, kit, bus, service="test")
    assert await relay.relay_once() == 20
    assert _names(bus) == [f"n{i}" for i in range(20)]


class PublishThenCrash(LocalBus):
    """A bus whose publish reaches the log, then the process 'dies' before the DB commit."""

    crashes = 1

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        await super().publish(records)
        if self.crashes:
            self.crashes -= 1
            raise ConnectionResetError("killed after publish, before delete")


async def test_crash_after_publish_republishes_and_consumers_apply_once(
    engine: AsyncEngine,
) -> None:
    store = await _store(engine)
    await _emit(store, ["x1", "x2"])
    bus = PublishThenCrash(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(store.sessions, kit, bus, service="test")
    try:
        await relay.relay_once()
    except ConnectionResetError:
        pass
    assert await _outbox_rows(store) == 2  # the delete never committed
    assert await relay.relay_once() == 2
    records = bus.read_all("sb.control.v1")
    assert len(records) == 4  # at-least-once on the wire ...
    consumer = await _store(engine)
    for r in records:
        await consumer.apply(decode(r.value).id, consumer="downstream")
    applied = await consumer.counts()
    assert sum(1 for eid in applied if eid not in ("x1", "x2")) == 2  # ... exactly once in effect
    assert set(applied.values()) == {1}


async def test_concurrent_relays_publish_each_row_once_in_order(engine: AsyncEngine) -> None:
    store = await _store(engine)
    names = [f"{'ab'[i % 2]}{i:03d}" for i in range(300)]
    for chunk in range(0, 300, 50):
        await _emit(store, names[chunk : chunk + 50])
    bus = LocalBus(partitions={"sb.control.v1": 1})
    relays = [
        OutboxRelay(store.sessions, kit, bus, service="test", batch_size=40) for _ in range(3)
    ]

    async def drain(relay: OutboxRelay) -> None:
        for _ in range(200):
            if not await relay.relay_once() and not await _outbox_rows(store):
                return
            await asyncio.sleep(0)

    await asyncio.gather(*(drain(r) for r in relays))
    published = _names(bus)
    assert sorted(published) == sorted(names) and len(published) == 300
    for prefix in "ab":
        mine = [n for n in published if n[0] == prefix]
        assert mine == sorted(mine)  # order per key survives concurrent relays


async def test_inbox_claims_a_batch_in_one_statement_and_reports_only_new_ids(
    engine: AsyncEngine,
) -> None:
    store = await _store(engine)
    await store.apply("old")
    async with store.uow() as uow:
        fresh = await uow.unseen(consumer="test", event_ids=["a", "old", "b", "a"])
        assert fresh == {"a", "b"}  # "old" was processed before; "a" twice is one id
        assert await uow.unseen(consumer="test", event_ids=["a", "b", "c"]) == {"c"}
    async with store.uow() as uow:  # the one above rolled back: its claims are forgotten
        assert await uow.unseen(consumer="test", event_ids=["a", "c"]) == {"a", "c"}
        assert await uow.unseen(consumer="other", event_ids=["old"]) == {"old"}
        assert await uow.unseen(consumer="test", event_ids=[]) == set()


async def test_on_postgresql_the_inbox_claim_bypasses_the_session(engine: AsyncEngine) -> None:
    """A batch's claim runs once per transaction, so the session's cost counts (~200 µs of
    client CPU a statement through it, ~30 on the driver): it runs on the unit of work's
    asyncpg connection, in its transaction (begun there when the claim is its first statement,
    so committed or rolled back with the session's own statements)."""
    if engine.dialect.name != "postgresql":
        return  # SQLite: through the session as before (the tests above)
    store = await _store(engine)
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    async with store.uow() as uow:
        assert await uow.unseen(consumer="test", event_ids=["a", "b"]) == {"a", "b"}
        async with engine.connect() as other:  # not committed yet: another session sees nothing
            seen = (await other.execute(select(func.count()).select_from(kit.inbox))).scalar()
        assert seen == 0
    async with store.uow() as uow:  # the one above rolled back: its claims are forgotten
        assert await uow.unseen(consumer="test", event_ids=["a", "c"]) == {"a", "c"}
        await uow.session.execute(insert(effects).values(event_id="a"))  # same transaction
        await uow.commit()
    assert [s for s in sent if s.startswith("INSERT INTO inbox")] == []  # none via the session
    async with store.uow() as uow:
        assert await uow.unseen(consumer="test", event_ids=["a", "b", "c"]) == {"b"}
    assert await store.counts() == {"a": 1}


async def test_on_postgresql_a_relay_run_uses_no_session(engine: AsyncEngine) -> None:
    """A run's session, transaction and statement through it cost as much client CPU as its
    round trips; it runs on a pooled connection's asyncpg driver instead, in order by id."""
    if engine.dialect.name != "postgresql":
        return  # SQLite: through the session as before (the tests above)
    store = await _store(engine)
    await _emit(store, ["r1", "r2"])
    await _emit(store, ["r3"])
    sent: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    bus = LocalBus(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(store.sessions, kit, bus, service="test")
    assert await relay.relay_once() == 3 and _names(bus) == ["r1", "r2", "r3"]
    assert [s for s in sent if "outbox" in s] == []  # none via the session
    assert await _outbox_rows(store) == 0 and await relay.relay_once() == 0


class PublishHangs(LocalBus):
    """A bus whose publish never returns (a broker that stopped answering)."""

    def __init__(self) -> None:
        super().__init__(partitions={"sb.control.v1": 1})
        self.entered = asyncio.Event()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        self.entered.set()
        await asyncio.Event().wait()


async def test_a_relay_run_cancelled_while_publishing_leaves_no_transaction_open(
    engine: AsyncEngine,
) -> None:
    """On PostgreSQL the run's transaction is the dialect's own on the pooled connection, so
    the pool rolls it back when the cancelled run returns the connection: the claimed rows
    stay for the next run, and no connection is handed out still inside a transaction."""
    store = await _store(engine)
    await _emit(store, ["p1", "p2"])
    bus = PublishHangs()
    run = asyncio.create_task(OutboxRelay(store.sessions, kit, bus, service="test").relay_once())
    await asyncio.wait_for(bus.entered.wait(), 10)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            stuck = "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
            assert (await conn.execute(text(stuck))).scalar_one() == 0
    assert await _outbox_rows(store) == 2
    published = LocalBus(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(store.sessions, kit, published, service="test")
    assert await relay.relay_once() == 2 and _names(published) == ["p1", "p2"]


async def test_relay_runs_leave_no_cyclic_garbage(engine: AsyncEngine) -> None:
    """A run builds no statements: under load the relay runs ~100 times a second, and each run's
    statements were cyclic garbage, which set off the young collections that paused ingest."""
    store = await _store(engine)
    bus = LocalBus(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(store.sessions, kit, bus, service="test")
    await _emit(store, ["warm"])
    await relay.relay_once()  # first run: connections, compiled statements, caches
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in range(5):
            await _emit(store, [f"g{i}", f"h{i}"][: 1 + i % 2])  # batches of 1 and 2 rows
            assert await relay.relay_once() == 1 + i % 2
        gc.collect()
        leftovers = {
            type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("sqlalchemy.sql")
        }
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert leftovers == set()


async def test_running_relay_publishes_each_commit_in_one_run_without_an_empty_one(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At low rates every commit used to cost two relay transactions: its batch, then an empty
    run before waiting; a batch smaller than the limit already took everything committed."""
    store = await _store(engine)
    bus = LocalBus(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(store.sessions, kit, bus, service="test", poll_interval_s=30)
    runs: list[int] = []
    relay_once = relay.relay_once

    async def counted() -> int:
        runs.append(await relay_once())
        return runs[-1]

    monkeypatch.setattr(relay, "relay_once", counted)
    relay.start()
    try:
        while not runs:  # noqa: ASYNC110 - the run at start (nothing to publish yet)
            await asyncio.sleep(0.01)
        for i in range(4):
            await _emit(store, [f"c{i}"])
            relay.notify()  # as a unit of work's commit does
            for _ in range(200):
                if len(_names(bus)) == i + 1:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # time for a needless run to show
    finally:
        await relay.stop()
    assert _names(bus) == ["c0", "c1", "c2", "c3"]
    assert runs[:5] == [0, 1, 1, 1, 1]  # the run at start, then one per commit


async def test_a_relay_run_on_postgresql_claims_once_in_one_statement(engine: AsyncEngine) -> None:
    """Lock, claim and delete are one statement whose claim (the LockRows node) runs once, not
    once per outbox row (as a semi join over the table it did: ~40 ms a run under load)."""
    if engine.dialect.name != "postgresql":
        return  # SQLite takes the database write lock and deletes by id
    store = await _store(engine)
    async with store.sessions() as s:  # statistics of an empty outbox, as a busy relay sees it
        await s.execute(text("ANALYZE outbox"))
    await _emit(store, [f"a{i:03d}" for i in range(120)])
    relay = OutboxRelay(store.sessions, kit, LocalBus(), service="test", batch_size=50)
    stmt = relay._take_pg.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with store.sessions() as s, s.begin():
        [[doc]] = (await s.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {stmt}"))).all()
        await s.rollback()

    def nodes(node: dict[str, Any], path: tuple[str, ...] = ()) -> list[Any]:
        here = (*path, node.get("Parent Relationship", ""))
        children = node.get("Plans", [])
        return [(node, here), *(n for child in children for n in nodes(child, here))]

    locks = [(n, path) for n, path in nodes(doc[0]["Plan"]) if n["Node Type"] == "LockRows"]
    assert [(n["Actual Loops"], n["Actual Rows"]) for n, _ in locks] == [(1, 50)]
    assert "InitPlan" in locks[0][1]  # evaluated once, whatever join the planner picks
    bus = LocalBus(partitions={"sb.control.v1": 1})
    relay = OutboxRelay(store.sessions, kit, bus, service="test", batch_size=50)
    assert [await relay.relay_once() for _ in range(4)] == [50, 50, 20, 0]
    assert _names(bus) == [f"a{i:03d}" for i in range(120)]
