"""Work that must not be cut midway, and a shutdown that says what it waits on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest
import structlog

from sbkit import tasks
from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.local import LocalBus
from sbkit.web import create_app


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
    with structlog.testing.capture_logs() as logs:
        async with app.router.lifespan_context(app):
            pass
    waiting = [e for e in logs if e["event"] == "service.stop_waiting"]
    assert waiting and all(e["on"] == "consumers" and e["service"] == "svc" for e in waiting)
    assert waiting[0]["waited_s"] == 0.05
    assert logs[-1]["event"] == "service.stopped"  # waited for, not cut


async def test_a_reader_is_given_its_grace_then_cancelled() -> None:
    async def quick() -> None:
        await asyncio.sleep(0.01)

    async def stuck() -> None:
        await asyncio.sleep(3600)

    with structlog.testing.capture_logs() as logs:
        done = asyncio.create_task(quick())
        await tasks.stop_reader(done, what="quick", service="svc", grace_s=5)
        hung = asyncio.create_task(stuck())
        await tasks.stop_reader(hung, what="stuck", service="svc", grace_s=0.05)
    assert done.done() and not done.cancelled()
    assert hung.cancelled()
    assert [(e["event"], e["on"]) for e in logs] == [("service.stop_cancelled", "stuck")]
