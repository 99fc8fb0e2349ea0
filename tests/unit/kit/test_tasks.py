"""Work that must not be cut midway, and a shutdown that says what it waits on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Column, MetaData, String, Table, text

from sbkit import tasks, web
from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.local import LocalBus
from sbkit.db.tables import KitTables
from sbkit.runtime import ServiceRuntime
from sbkit.settings import KitSettings
from sbkit.web import create_app
from tests.fakes.logs import record_logs


async def test_cancelled_caller_lets_uncancelled_work_finish() -> None:
    finished: list[str] = []
    started = asyncio.Event()

    async def unit_of_work() -> str:
        started.set()
        await asyncio.sleep(0.1)
        finished.append("rolled back, connection returned")
        return "doc"

    async with anyio.create_task_group() as tg:  # as sse-starlette cancels a stream
        tg.start_soon(tasks.uncancelled, unit_of_work())
        await started.wait()
        tg.cancel_scope.cancel()
    assert finished == []  # the caller did not wait for it
    await asyncio.sleep(0.3)
    assert finished == ["rolled back, connection returned"]


async def test_uncancelled_returns_and_raises_what_the_work_does() -> None:
    async def fails() -> None:
        raise LookupError("gone")

    assert await tasks.uncancelled(asyncio.sleep(0, "x")) == "x"
    with pytest.raises(LookupError):
        await tasks.uncancelled(fails())


async def test_a_slow_shutdown_step_is_logged_with_what_it_waits_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "SLOW_STEP_S", 0.05)
    bus = LocalBus()

    async def slow_stop_consuming() -> None:  # a consumer's batch still in its transaction
        await asyncio.sleep(0.3)

    monkeypatch.setattr(bus, "stop_consuming", slow_stop_consuming)
    app = create_app(
        title="svc",
        runtimes=[],
        routers=[],
        bus=bus,
        verifier=TokenVerifier(Keyring.load(tmp_path)),
    )
    logs = record_logs(monkeypatch, tasks, web).events
    async with app.router.lifespan_context(app):
        pass
    waiting = [e for e in logs if e["event"] == "service.stop_waiting"]
    assert waiting and all(e["on"] == "consumers" and e["service"] == "svc" for e in waiting)
    assert waiting[0]["waited_s"] == 0.05
    assert logs[-1]["event"] == "service.stopped"  # waited for, not cut


async def test_a_reader_is_given_its_grace_then_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    async def quick() -> None:
        await asyncio.sleep(0.01)

    async def stuck() -> None:
        await asyncio.sleep(3600)

    logs = record_logs(monkeypatch, tasks).events
    done = asyncio.create_task(quick())
    await tasks.stop_reader(done, what="quick", service="svc", grace_s=5)
    hung = asyncio.create_task(stuck())
    await tasks.stop_reader(hung, what="stuck", service="svc", grace_s=0.05)
    assert done.done() and not done.cancelled()
    assert hung.cancelled()
    assert [(e["event"], e["on"]) for e in logs] == [("service.stop_cancelled", "stuck")]


def _runtime(tmp_path: Path) -> ServiceRuntime:
    settings = KitSettings(
        service="svc",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/svc.db",
        migrate_on_start=False,
    )
    metadata = MetaData()
    Table("marks", metadata, Column("what", String(20)))
    tables = KitTables(metadata)
    return ServiceRuntime(
        settings, metadata=metadata, tables=tables, migrations=tmp_path, bus=LocalBus()
    )


async def test_stop_cancels_a_timer_loop_only_outside_its_unit_of_work(tmp_path: Path) -> None:
    """Routing's and notifier's timer loops were cancelled wherever they were: inside a unit of
    work, a notification sent but not yet recorded was sent again after the restart."""
    runtime = _runtime(tmp_path)
    async with runtime.engine.begin() as conn:
        await conn.run_sync(runtime.metadata.create_all)
    inside = asyncio.Event()

    async def timers() -> None:
        while True:
            async with runtime.uow() as uow:
                await uow.session.execute(text("INSERT INTO marks VALUES ('sent')"))
                inside.set()
                await asyncio.sleep(0.2)  # e.g. the provider's answer
                await uow.session.execute(text("INSERT INTO marks VALUES ('recorded')"))
                await uow.commit()
            await asyncio.sleep(3600)  # the next poll: cancelled here

    runtime.add_background(timers)
    await runtime.start()
    await inside.wait()
    await asyncio.wait_for(runtime.stop(), timeout=30)

    runtime = _runtime(tmp_path)
    async with runtime.uow() as uow:
        marks = (await uow.session.execute(text("SELECT what FROM marks"))).scalars().all()
    await runtime.engine.dispose()
    assert marks == ["sent", "recorded"]
