"""The live outputs at their edges: a wallboard stream closed mid-read, the gauges at shutdown.

Both run on SQLite, where every unit of work takes the write lock (BEGIN IMMEDIATE) and one
pooled connection serves the whole process. A CI run's analytics process hung after SIGTERM with
one `analytics.gauges_failed OperationalError` logged: the browser had closed its stream while
the stream's query ran; the dropped connection kept the database write-locked, so each later
transaction waited out the 30 s busy timeout ("database is locked"), the gauges' refresh among them,
and shutdown waited for it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from analytics.bootstrap import AnalyticsService
from analytics.domain.kpis import Params
from analytics.entrypoints import live
from analytics.service_layer import live as live_reads
from sbkit import tasks
from sbkit.db.uow import UnitOfWork
from tests.fakes.logs import record_logs

# A read that keeps SQLite busy in aiosqlite's thread for a while (about a second).
SLOW_READ = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000)"
    " SELECT count(*) FROM c"
)


class _Connected:
    async def is_disconnected(self) -> bool:
        return False


async def _read_forever(service: AnalyticsService) -> None:
    async for _ in live.stream(
        service.runtime,
        _Connected(),  # type: ignore[arg-type]
        tenant="acme",
        params=Params(),
        at=lambda: datetime.now(UTC),
        every_s=0.05,
        max_events=None,
    ):
        pass


def _write_lock_free(db: Path) -> bool:
    other = sqlite3.connect(db, timeout=0.2, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


async def test_a_stream_closed_during_its_query_leaves_the_database_writable(
    analytics: AnalyticsService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sse-starlette cancels the stream (an anyio cancel scope) when the client goes away; here
    while its query runs. Cut there, the connection was dropped inside its transaction and the
    write lock stayed taken: the next refresh waited the whole busy timeout."""
    querying = asyncio.Event()

    async def slow_snapshot(uow: UnitOfWork, *_: Any) -> dict[str, Any]:
        querying.set()
        await uow.session.execute(SLOW_READ)
        return {}

    monkeypatch.setattr(live_reads, "snapshot", slow_snapshot)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read_forever, analytics)
        await querying.wait()
        await asyncio.sleep(0.05)  # inside aiosqlite's call now
        tg.cancel_scope.cancel()  # the browser closed the page

    await asyncio.wait_for(live.refresh_gauges(analytics.runtime), timeout=15)
    assert _write_lock_free(tmp_path / "analytics.db")


@pytest.fixture
async def connection_taken(analytics: AnalyticsService) -> AsyncIterator[None]:
    """The pool's only SQLite connection, held by someone else (a long transaction)."""
    async with analytics.runtime.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
        yield


async def test_stopping_does_not_wait_for_a_refresh_queued_for_the_database(
    analytics: AnalyticsService, connection_taken: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh waiting for the connection could hold shutdown up to the pool's 60 s timeout;
    it only reads, so after a short grace it is given up, and the log says so."""

    async def run_and_stop() -> None:
        async with live.gauges(analytics.runtime, every_s=0.05):
            await asyncio.sleep(0.2)  # the first refresh now waits for the connection

    logs = record_logs(monkeypatch, tasks).events
    await asyncio.wait_for(run_and_stop(), timeout=live.STOP_GRACE_S + 10)
    assert any(
        e["event"] == "service.stop_cancelled" and e["on"] == "gauges refresh" for e in logs
    ), logs
