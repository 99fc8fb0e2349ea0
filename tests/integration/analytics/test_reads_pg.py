"""Per-queue reads on real PostgreSQL: quantiles picked in SQL at block edges, reads outside a
transaction, no parallel plans."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import literal, select, text

from analytics.adapters import repository
from analytics.domain import components as comp
from analytics.service_layer import queries
from tests.unit.analytics.conftest import TENANT, Api

NOV = {"from": "2026-11-01T00:00:00+00:00", "to": "2026-12-01T00:00:00+00:00"}
QUANTILE_KPIS = "wait_p50,wait_p90,handle_p50,handle_p90,offered"
# sk:wait bins per queue: the rank of p50 / p90 exactly at a block's last count (the next
# block holds the quantile), inside a block, in the last bin of a block, a single count
SKETCHES = {
    "edge": {5: 16, 20: 17},  # n 33: p50 rank 16 = the count of block 0
    "inside": {3: 2, 17: 5, 18: 5, 31: 1, 40: 9},
    "last": {15: 1, 31: 1, 47: 1, 63: 1, 64: 1},
    "one": {700: 1},
}


async def _write(api: Api) -> None:
    deltas: repository.Deltas = {}
    for i, (queue, bins) in enumerate(SKETCHES.items()):
        # over two days of November: a month read sums both
        for day in (3, 17):
            bucket = comp.Bucket(
                TENANT, datetime(2026, 11, day, 9, tzinfo=UTC), queue, "voice", "a"
            )
            incs = [comp.Increment("sk:wait", n, b) for b, n in bins.items()]
            incs += [comp.Increment("sk:handle", 1, 16 * (i + day)), *comp.call_offered()]
            repository.collect(deltas, bucket, incs)
    async with api.service.runtime.uow() as uow:
        await repository.add_deltas(uow.session, deltas)
        await uow.commit()


async def _kpis(api: Api, **params: Any) -> Any:
    r = await api.get("/v1/kpis", **NOV, group_by="queue", kpi=QUANTILE_KPIS, **params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_quantiles_picked_in_sql_at_block_edges_equal_those_of_every_bin(
    pg_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _write(pg_api)
    picked = await _kpis(pg_api)
    with monkeypatch.context() as m:  # every bin read, the quantiles taken in Python
        m.setattr(queries, "needs", lambda kpis, params: None)
        assert await _kpis(pg_api) == picked
    by_queue = {r["queue"]: r["kpis"] for r in picked["rows"]}
    assert set(by_queue) == set(SKETCHES)
    assert all(k["wait_p50"]["value"] is not None for k in by_queue.values())


def _statements_seen(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every statement asyncpg runs from now on in this task (the app's requests run in it
    through the ASGI transport; the outbox relay and the live gauges run in theirs), through
    the session (its prepared statements) or on the driver connection (`sbkit.db.driver`), with
    whether the server then reported a transaction open on that connection (its ReadyForQuery
    status)."""
    seen: list[tuple[str, bool]] = []
    task = asyncio.current_task()

    async def prepared_fetch(self: Any, *args: Any, **kw: Any) -> Any:
        rows = await fetch_prepared(self, *args, **kw)
        if asyncio.current_task() is task:
            seen.append((self.get_query(), self._connection.is_in_transaction()))
        return rows

    async def fetch(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        rows = await fetch_driver(self, query, *args, **kw)
        if asyncio.current_task() is task:
            seen.append((query, self.is_in_transaction()))
        return rows

    fetch_prepared, fetch_driver = PreparedStatement.fetch, asyncpg.Connection.fetch
    monkeypatch.setattr(PreparedStatement, "fetch", prepared_fetch)
    monkeypatch.setattr(asyncpg.Connection, "fetch", fetch)
    return seen


async def test_kpi_reads_run_outside_a_transaction_and_writes_inside_one(
    pg_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _write(pg_api)
    seen = _statements_seen(monkeypatch)
    for url in ("/v1/kpis", "/v1/trends/categories"):  # (every KPI: 4 statements)
        r = await pg_api.get(url, **NOV, group_by="queue")
        assert r.status_code == 200, r.text
    reads = [s for s in seen if "kpi_" in s[0] or "presence_log" in s[0]]
    assert len(reads) >= 5 and not any(in_tx for _, in_tx in reads), reads
    # the per-queue sums' statement (on the driver connection) is among them
    assert any("kpi_monthly_queue_blocks" in sql for sql, _ in reads), reads
    seen.clear()
    r = await pg_api.client.put(
        "/v1/kpis/thresholds",
        json={
            "thresholds": {"asa": {"green_at": 20, "red_at": 60, "direction": "lower_is_better"}}
        },
        headers=pg_api.auth(),
    )
    assert r.status_code == 200, r.text
    writes = [s for s in seen if "kpi_thresholds" in s[0]]
    assert writes and all(in_tx for _, in_tx in writes), writes
    monkeypatch.undo()
    # the pooled connection is back in transactions for the next unit of work
    async with pg_api.service.runtime.uow() as uow:
        await uow.session.execute(select(literal(1)))
        conn = await uow.session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        assert driver.is_in_transaction()


async def test_reads_are_never_planned_with_parallel_workers(pg_api: Api) -> None:
    # a statement that PostgreSQL's defaults plan as a Gather of two workers (a parallel append
    # of three tiny scans costed at 1,000 each), through a read and then a unit of work that
    # rolled back: the setting holds on every connection the pool hands out
    async def planned(conn: Any) -> str:
        sql = (
            "EXPLAIN SELECT name, sum(value) FROM (SELECT name, value FROM kpi_daily_total"
            " UNION ALL SELECT name, value FROM kpi_monthly_total"
            " UNION ALL SELECT name, value FROM kpi_hourly_total) r GROUP BY name"
        )
        return "\n".join(row[0] for row in await conn.execute(text(sql)))

    async with pg_api.service.runtime.engine.connect() as conn, conn.begin():
        for setting in (
            "parallel_setup_cost",
            "parallel_tuple_cost",
            "min_parallel_table_scan_size",
        ):
            await conn.execute(text(f"SET LOCAL {setting} = 0"))
        assert "Gather" not in await planned(conn)
        await conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 2"))
        assert "Gather" in await planned(conn)  # PostgreSQL's default would
        await conn.rollback()
    for _ in range(3):
        async with pg_api.service.runtime.uow() as uow:
            shown = await uow.session.execute(text("SHOW max_parallel_workers_per_gather"))
            assert shown.scalar_one() == "0"
