"""The inbox: remember processed event ids in the same transaction as their effect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def _insert(session: AsyncSession, inbox: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the session's dialect (PostgreSQL or SQLite)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(inbox).on_conflict_do_nothing(index_elements=["consumer", "event_id"])


async def claim(session: AsyncSession, inbox: Table, *, consumer: str, event_id: str) -> bool:
    """Record the event as processed by `consumer`; False if it already was (skip the effect)."""
    stmt = _insert(session, inbox).values(consumer=consumer, event_id=event_id)
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def claim_many(
    session: AsyncSession, inbox: Table, *, consumer: str, event_ids: Sequence[str]
) -> set[str]:
    """Record all events as processed in one statement; returns the ids not processed before."""
    distinct = list(dict.fromkeys(event_ids))
    if not distinct:
        return set()
    # executemany form: SQLAlchemy batches it into multi-row INSERTs with a cached statement
    stmt = _insert(session, inbox).returning(inbox.c.event_id)
    result = await session.execute(stmt, [{"consumer": consumer, "event_id": e} for e in distinct])
    return set(result.scalars())
