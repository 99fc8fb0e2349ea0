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
