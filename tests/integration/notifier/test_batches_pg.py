"""On real PostgreSQL: the commerce consumer's set-at-a-time batch (shipments, orders and episodes
read once per batch, the alerts decided together with their reads once per batch, orders,
shipments, timers and their deletes, notifications written at commit, events emitted with one
statement) ends exactly where one transaction per event ends, with duplicates of the same event,
resent and out-of-order scans of one shipment, scans before their order, two tenants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from notifier.adapters import orm
from notifier.adapters.notifications import Notifications
from notifier.adapters.repository import Repository
from notifier.bootstrap import NotifierService, bootstrap
from notifier.config import NotifierSettings
from notifier.domain.episodes import Episode
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.routing import TicketOpened
from sbcontracts.topics import COMMERCE
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import PoisonMessage, Record
from tests.conftest import fresh_schema
from tests.unit.notifier.conftest import (
    START,
    Clock,
    FakeSender,
    customer,
    deliver,
    notifications,
    order,
    scan,
    state,
)

H = timedelta(hours=1)


def _as(tenant: str, e: CloudEvent[Any]) -> CloudEvent[Any]:
    return new_event(e.data, tenant_id=tenant, source="test")


def _history(tenant: str) -> list[CloudEvent[Any]]:
    """One tenant's commerce events in arrival order (with an exact duplicate to add)."""
    delayed = _as(tenant, scan(START - 3 * H, carrier_code="WX", is_delay=True))
    events = [
        order(dispatch_by=START - 10 * H),
        scan(START - 9 * H),  # dispatched: the cut-off timer is disarmed
        scan(START - 5 * H),
        scan(START - 9 * H),  # the same scan resent (another event id)
        delayed,  # a carrier delay: an alert
        scan(START - 4 * H),  # out of order: older than the last scan
        scan(START - 8 * 24 * H),  # stale
        scan(START - H, estimate_to=START + 24 * H),  # recovered
        scan(START, estimate_to=START + 6 * 24 * H),  # late again: a new episode
        scan(START + 0.1 * H, estimate_to=START + 9 * 24 * H),  # worse by > margin: again
        scan(START - 2 * H, n=2, estimate_to=START + 5 * 24 * H),  # before its order
        order(n=2),
        scan(START - H, n=2, estimate_to=START + 5 * 24 * H),  # late against the promise
        scan(START - 0.5 * H, "delivered", n=2),  # terminal: the stall timer is disarmed
        order(n=3, dispatch_by=START + H),  # cut-off armed, not yet due
    ]
    return [delayed, *[e if e is delayed else _as(tenant, e) for e in events]]


@asynccontextmanager
async def _service(pg_url: str, tmp_path: Path) -> AsyncIterator[NotifierService]:
    async with fresh_schema(pg_url) as (_, schema):
        settings = NotifierSettings(
            database_url=pg_url, db_schema=schema, auth_key_dir=str(tmp_path / "keys"),
            retry_attempts=2, retry_initial_backoff_ms=1,
        )  # fmt: skip
        service = bootstrap(
            settings, bus=LocalBus(":memory:"), clock=Clock(), sender=FakeSender(), timers=False
        )
        await service.runtime.migrate()
        try:
            for tenant in ("acme", "other"):
                for e in customer():
                    await deliver(service, _as(tenant, e))
            opened = TicketOpened(  # "other" has an open case about order 2: its alert is a note
                ticket_id="t-1", customer_id="c-1", order_id="o-2", occurred_at=START
            )
            await deliver(service, new_event(opened, tenant_id="other", source="test"))
            yield service
        finally:
            await service.runtime.stop()


async def test_a_batch_with_duplicates_and_reordering_ends_where_one_by_one_ends(
    pg_url: str, tmp_path: Path
) -> None:
    events = [*_history("acme"), *_history("other")]
    async with (
        _service(pg_url, tmp_path / "a") as one_by_one,
        _service(pg_url, tmp_path / "b") as batched,
    ):
        for e in events:
            await deliver(one_by_one, e)
        (sub,) = [s for s in batched.runtime._subscriptions if s.topics == (events[0].data.topic,)]
        assert sub.batch_handler is not None
        statements: list[str] = []
        event.listen(
            batched.runtime.engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, q, *_: statements.append(" ".join(q.split()[:3])),
        )
        records = [Record(sub.topics[0], 0, i, None, encode(e)) for i, e in enumerate(events)]
        await sub.batch_handler(records)
        sql = statements[:]  # the batch's, not the reads below
        expected, got = await state(one_by_one), await state(batched)
        assert got == expected
        notes = await notifications(batched)
        keys = [(n.tenant_id, n.shipment_id, n.episode, n.delay_reason) for n in notes]
        assert len(keys) == len(set(keys)) == 8  # 4 alerts per tenant, each once
        assert {n.shipment_id for n in notes} == {"s-1", "s-2"}
        suppressed = [(n.tenant_id, n.shipment_id, n.reason) for n in notes if n.note]
        assert suppressed == [("other", "s-2", "open_case")]
        assert len(got["timers"]) >= 4 and got["gaps"] and got["events"]
        # set at a time: shipments (with orders) and episodes read once per tenant, orders,
        # shipments, timers and events written once for the whole batch
        once: tuple[str, ...] = (
            "INSERT INTO orders",
            "INSERT INTO shipments",
            "DELETE FROM timers",
        )
        once += ("INSERT INTO episodes", "INSERT INTO notifications", "INSERT INTO outbox")
        assert {s: sql.count(s) for s in once} == dict.fromkeys(once, 1)
        assert sql.count("SELECT shipments.tenant_id, shipments.shipment_id,") == 2
        # the 8 alerts' reads: once per tenant, not once per alert
        for table in ("episodes", "handles", "customers", "cases", "merges", "notifications"):
            reads = [s for s in sql if s.startswith(f"SELECT {table}.")]
            assert 2 <= len(reads) <= 4, (table, reads)
        await sub.batch_handler(records)  # the whole batch redelivered: the inbox skips it
        assert await state(batched) == expected
        for service in (one_by_one, batched):
            assert isinstance(service.clock, Clock)  # the hand-moved one _service built it with
            service.clock.advance(3 * H)
            await service.tick()
        assert await state(batched) == await state(one_by_one)


async def test_timers_disarmed_and_armed_in_one_transaction_end_as_the_last_call_says(
    pg_url: str, tmp_path: Path
) -> None:
    async with _service(pg_url, tmp_path) as service:
        async with service.runtime.uow() as uow:
            notes = Notifications(uow.session, "acme")
            await notes.arm("stall", "kept", due_at=START)
            await uow.commit()
        async with service.runtime.uow() as uow:
            notes = Notifications(uow.session, "acme")
            await notes.disarm("stall", "kept")
            await notes.arm("stall", "kept", due_at=START + H)  # re-armed after its delete
            await notes.arm("stall", "gone", due_at=START)
            await notes.disarm("stall", "gone")  # deleted after it was armed
            await notes.disarm("cutoff", "never-armed")
            await uow.commit()
        async with service.runtime.uow() as uow:
            t = orm.timers.c
            rows = (await uow.session.execute(select(t.ref, t.due_at))).all()
        assert [(r.ref, r.due_at) for r in rows] == [("kept", START + H)]


async def test_a_poison_event_rolls_its_batch_back_for_the_per_record_path(
    pg_url: str, tmp_path: Path
) -> None:
    poison = scan(START, estimate_to=datetime(1970, 1, 1, tzinfo=UTC))
    events = [order(), scan(START - H, carrier_code="DY"), poison]
    async with _service(pg_url, tmp_path) as service:
        (sub,) = [s for s in service.runtime._subscriptions if s.topics == (COMMERCE.name,)]
        assert sub.batch_handler is not None
        records = [Record(sub.topics[0], 0, i, None, encode(e)) for i, e in enumerate(events)]
        with pytest.raises(PoisonMessage):
            await sub.batch_handler(records)
        empty = await state(service)
        assert not empty["shipments"] and not empty["orders"] and not empty["events"]
        for e in events[:2]:  # the bus then handles them one by one
            await deliver(service, e)
        with pytest.raises(PoisonMessage):
            await deliver(service, poison)
        assert len(await notifications(service)) == 1


async def test_an_episode_keeps_when_it_opened_across_writes_behind(
    pg_url: str, tmp_path: Path
) -> None:
    async with _service(pg_url, tmp_path) as service:
        for now, open_ in ((START, True), (START + H, True), (START + 2 * H, False)):
            async with service.runtime.uow() as uow:
                repo = Repository(uow.session, "acme")
                await repo.put_episode("s-1", Episode(1, open_, "stalled", 1), now=now)
                if open_:  # twice in one transaction: the first write's opened_at
                    await repo.put_episode("s-1", Episode(1, True, "stalled", 2), now=now + H)
                await uow.commit()
        async with service.runtime.uow() as uow:
            e = orm.episodes.c
            row = (await uow.session.execute(select(e.opened_at, e.closed_at, e.alerts))).one()
        assert tuple(row) == (START, START + 2 * H, 1)
