"""A tiny idempotent effect store for bus/inbox tests: one table of applied effects plus the kit tables."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sbkit.db.engine import make_sessionmaker
from sbkit.db.tables import KitTables
from sbkit.db.uow import UnitOfWork

metadata = MetaData()
kit = KitTables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(128), nullable=False),
)


class EffectStore:
    """Applies an effect per event id exactly once, through the inbox, in one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessions = make_sessionmaker(engine)

    async def create(self) -> None:
        """Create the tables."""
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    def uow(self) -> UnitOfWork:
        """A unit of work over these tables."""
        return UnitOfWork(self.sessions, kit)

    async def apply(self, event_id: str, *, consumer: str = "test") -> bool:
        """Apply once; False if the inbox says it was applied before."""
        async with self.uow() as uow:
            if await uow.seen(consumer=consumer, event_id=event_id):
                return False
            await uow.session.execute(insert(effects).values(event_id=event_id))
            await uow.commit()
        return True

    async def counts(self) -> dict[str, int]:
        """How many times each event's effect was applied."""
        async with self.sessions() as s:
            rows = await s.execute(
                select(effects.c.event_id, func.count()).group_by(effects.c.event_id)
            )
            return {eid: n for eid, n in rows.all()}
