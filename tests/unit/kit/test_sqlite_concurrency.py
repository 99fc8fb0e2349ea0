"""Embedded mode's SQLite: transactions are isolated (read-modify-write loses no update) and wait."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text, update

from sbkit.db.engine import make_engine, make_sessionmaker

metadata = MetaData()
counter = Table("counter", metadata, Column("id", Integer, primary_key=True), Column("n", Integer))


async def test_concurrent_read_modify_write_transactions_lose_no_update(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(counter).values(id=1, n=0))
    sessions = make_sessionmaker(engine)

    async def increment() -> None:
        async with sessions() as session, session.begin():
            n = await session.scalar(select(counter.c.n).where(counter.c.id == 1))
            await asyncio.sleep(0.005)  # others try to run in between
            await session.execute(update(counter).where(counter.c.id == 1).values(n=(n or 0) + 1))

    await asyncio.gather(*(increment() for _ in range(25)))
    async with sessions() as session:
        assert await session.scalar(select(counter.c.n)) == 25
    await engine.dispose()


async def test_a_waiting_transaction_is_not_overtaken_by_a_later_one(tmp_path: Path) -> None:
    """SQLite has one writer, and its busy handler polls with growing sleeps: a transaction
    that arrives just as the lock is freed takes it from one that has been waiting (a quiet
    tenant's request once waited 13 s behind a flood that way). The engine queues them: each
    waits only for the transactions that arrived before it."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(insert(counter).values(id=1, n=0))
    sessions = make_sessionmaker(engine)
    order: list[str] = []
    first_done = asyncio.Event()

    async def write(name: str, hold_s: float) -> None:
        async with sessions() as session, session.begin():
            await session.execute(update(counter).values(n=counter.c.n + 1))  # the lock is ours
            order.append(name)
            await asyncio.sleep(hold_s)  # held across awaits, as a request's transaction is

    async def first() -> None:
        await write("first", 0.3)
        first_done.set()

    async def waiting() -> None:
        await asyncio.sleep(0.05)  # arrives while the first holds the lock, and waits
        await write("waiting", 0.0)

    async def late() -> None:
        await first_done.wait()  # arrives the moment the lock is free
        await write("late", 0.2)

    await asyncio.gather(first(), waiting(), late())
    assert order == ["first", "waiting", "late"]
    await engine.dispose()


async def test_a_unit_of_work_cancelled_inside_its_query_leaves_the_database_writable(
    tmp_path: Path,
) -> None:
    """Cancelled mid-query, the session's connection is invalidated and closed; sqlite3 kept the
    closed connection's transaction (its cursor still open) and the write lock with it, so every
    later writer, in this process or another, failed with "database is locked"."""
    path = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = make_sessionmaker(engine)
    slow = text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000)"
        " SELECT count(*) FROM c"
    )  # ~0.5-1 s in SQLite

    async def write_then_read_slowly() -> None:
        async with sessions() as session, session.begin():
            await session.execute(insert(counter).values(id=1, n=0))
            await session.execute(slow)

    task = asyncio.create_task(write_then_read_slowly())
    await asyncio.sleep(0.1)  # inside the slow query
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with asyncio.timeout(10), sessions() as session, session.begin():
        await session.execute(insert(counter).values(id=2, n=0))
    other = sqlite3.connect(path, timeout=1, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's writer
        other.execute("ROLLBACK")
    finally:
        other.close()
    async with sessions() as session:
        assert list(await session.scalars(select(counter.c.id))) == [2]  # the first rolled back
    await engine.dispose()
