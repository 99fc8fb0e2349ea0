"""SQL helpers of the notifier adapters: one-statement upserts and a per-transaction memo."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, delete, event, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


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


# Write-behind: a consumer batch applies hundreds of events in one transaction; rows written per
# event (orders, shipment state, episodes, timers, gap samples, notifications) are kept here,
# last write per key wins (`keep` columns: the first), and written by one multi-row statement
# per table when the transaction commits (SQLAlchemy's before_commit, which runs inside the
# async commit, so the sync API is allowed). Rows deleted per event (timers disarmed) are kept
# too and deleted by one statement per table, before the upserts (a key re-written after its
# delete is dropped from the deletes, so either order ends the same). Reads of those rows go
# through the repositories, which look in their per-transaction memo first.
PENDING = "notifier.pending"
DELETES = "notifier.deletes"
KEEP = "notifier.keep"


def write_later(
    session: AsyncSession,
    table: Table,
    *,
    keys: Sequence[str],
    row: dict[str, Any],
    keep: Sequence[str] = (),
) -> None:
    """Upsert `row` at commit (keyed by `keys`; empty keys: a plain insert, every row kept).
    `keep`: columns set only when the row is inserted (an existing row keeps its values, and
    a row written twice in the transaction keeps the first write's)."""
    rows = session.info.setdefault(PENDING, {}).setdefault((table, tuple(keys)), {})
    if keys:
        values = tuple(row[k] for k in keys)
        session.info.get(DELETES, {}).get((table, tuple(keys)), set()).discard(values)
        if keep:
            session.info.setdefault(KEEP, {})[(table, tuple(keys))] = tuple(keep)
            if (first := rows.get(values)) is not None:
                row = row | {c: first[c] for c in keep}
        rows[values] = row
    else:
        rows[len(rows)] = row


def drop_pending(
    session: AsyncSession, table: Table, *, keys: Sequence[str], values: tuple[Any, ...]
) -> None:
    """Forget a pending upsert (the row is being deleted in this transaction)."""
    session.info.get(PENDING, {}).get((table, tuple(keys)), {}).pop(values, None)


def delete_later(
    session: AsyncSession, table: Table, *, keys: Sequence[str], values: tuple[Any, ...]
) -> None:
    """Delete the row with these key values at commit (and forget a pending upsert of it)."""
    drop_pending(session, table, keys=keys, values=values)
    session.info.setdefault(DELETES, {}).setdefault((table, tuple(keys)), set()).add(values)


def _flush(session: Session) -> None:
    deletes: dict[tuple[Table, tuple[str, ...]], set[tuple[Any, ...]]] = session.info.pop(
        DELETES, {}
    )
    for (table, keys), gone in deletes.items():
        if gone:
            columns = tuple_(*(table.c[k] for k in keys))
            session.execute(delete(table).where(columns.in_(sorted(gone, key=repr))))
    pending: dict[tuple[Table, tuple[str, ...]], dict[Any, dict[str, Any]]] = session.info.pop(
        PENDING, {}
    )
    keep: dict[tuple[Table, tuple[str, ...]], tuple[str, ...]] = session.info.pop(KEEP, {})
    if not pending:
        return  # another service's session, or nothing written behind
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for (table, keys), by_key in pending.items():
        rows = list(by_key.values())
        if not rows:
            continue
        stmt = insert(table)
        if keys:
            fixed = (*keys, *keep.get((table, keys), ()))
            update = {c: stmt.excluded[c] for c in rows[0] if c not in fixed}
            stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=update)
        # asyncpg's executemany: one prepared INSERT, the rows pipelined in one round trip. Multi-row
        # VALUES pages (RETURNING turns them on) cost more in an interleaved A/B, 3 runs x 20k
        # events: notifier 0.117-0.132 vs 0.106-0.133 ms, PostgreSQL 0.043-0.047 vs 0.034-0.041 ms
        # CPU per event (a page of each size is a new statement to parse and plan)
        session.execute(stmt, rows)


event.listen(Session, "before_commit", _flush)
