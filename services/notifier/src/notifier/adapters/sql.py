"""SQL helpers of the notifier adapters: one-statement upserts and a per-transaction memo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


def is_postgres(session: AsyncSession) -> bool:
    """Whether the session talks to PostgreSQL (row locks, SKIP LOCKED) rather than SQLite."""
    return session.get_bind().dialect.name == "postgresql"


def upsert(
    session: AsyncSession,
    table: Table,
    *,
    keys: Sequence[str],
    row: dict[str, Any],
    update: dict[str, Any],
) -> Any:
    """INSERT `row`, or on a conflict of `keys` UPDATE with `update` (nothing when it is empty)."""
    insert = pg_insert if is_postgres(session) else sqlite_insert
    stmt = insert(table).values(**row)
    if not update:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=update)


def memo(session: AsyncSession) -> dict[Any, Any]:
    """Values read once per transaction (policy, learned gaps): a batch of events shares them."""
    found: dict[Any, Any] = session.info.setdefault("notifier.memo", {})
    return found
