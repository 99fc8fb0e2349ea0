"""Pooled PostgreSQL connections: checked in one round trip before use, replaced when dead."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from sbkit.db.engine import make_engine


async def test_checkout_pings_once_without_a_transaction_around_it(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1)
    seen: list[str] = []
    try:
        async with engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            raw.add_query_logger(lambda record: seen.append(record.query))
        async with engine.connect() as conn:  # the same pooled connection, pinged first
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    # the ping, then the unit of work's own transaction (SQLAlchemy's pre-ping on asyncpg would
    # put a BEGIN ... ROLLBACK of its own around the ping: two more round trips)
    assert seen == [";", "BEGIN;", "ROLLBACK;"], seen


async def test_a_pooled_connection_the_server_killed_is_replaced_before_use(pg_url: str) -> None:
    engine, admin = make_engine(pg_url, pool_size=1), make_engine(pg_url)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(100):  # until the server has let it go
                gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"
                if (await conn.execute(text(gone), {"pid": pid})).scalar_one():
                    break
                await asyncio.sleep(0.05)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await engine.dispose()
        await admin.dispose()
