"""Embedded mode's SQLite: transactions are isolated (read-modify-write loses no update) and wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, insert, select, update

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
