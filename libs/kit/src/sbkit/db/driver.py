"""The kit's hot statements on the session's own asyncpg connection (PostgreSQL only).

A cached Core statement through the session costs ~150-200 µs of client CPU per call
(execution context, cache key, parameter and result processing, the greenlet bridge); the
same statement on the driver connection ~30 µs. A consumer batch's inbox claim runs once per
transaction, ~50-100 times a second at moderate rates, so it runs here: in the session's
transaction, begun on that connection (BEGIN, as the session would send it) when the
statement is the transaction's first. Errors are raised as the session raises them
(`DBAPIError` with the dialect's error as `orig`, SQLSTATE included), so deadlock retries and
outage handling see what they saw before. Results are asyncpg records; JSON columns are
decoded by the codec SQLAlchemy's dialect installs on every connection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession


async def fetch(session: AsyncSession, sql: str, args: list[Any]) -> list[Any] | None:
    """The rows of `sql` (asyncpg's `$n` parameters) run in the session's transaction on its
    asyncpg connection; None (nothing run) if the database is not PostgreSQL."""
    conn = await session.connection()  # checks a connection out (its ping) if none yet
    if conn.dialect.name != "postgresql":
        return None
    adapted: Any = (await conn.get_raw_connection()).dbapi_connection  # the dialect's adapter
    try:
        if adapted._transaction is None:  # the transaction's first statement: BEGIN first
            await adapted._start_transaction()
        rows: list[Any] = await adapted.driver_connection.fetch(sql, *args)
        return rows
    except Exception as exc:
        try:
            adapted._handle_exception(exc)  # asyncpg's error as the dialect's DBAPI error
        except Exception as translated:  # noqa: BLE001 - wrapped as the session wraps it
            raise DBAPIError.instance(
                sql, args, translated, conn.dialect.loaded_dbapi.Error
            ) from exc
        raise
