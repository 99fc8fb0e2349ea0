"""Hot statements on the session's own asyncpg connection (PostgreSQL only).

A cached Core statement through the session costs ~150-200 µs of client CPU per call
(execution context, cache key, parameter and result processing, the greenlet bridge); the
same statement on the driver connection ~30 µs. The kit's inbox claim (once per consumer
batch) and routing's decision statements run here: in the session's transaction, on its
connection (same transaction, same locks). Errors are raised as the session raises them
(`DBAPIError` with the dialect's error as `orig`, SQLSTATE included), so deadlock retries and
outage handling see what they saw before. Results are asyncpg records; JSON columns are
decoded by the codec SQLAlchemy's dialect installs on every connection.

This reaches the dialect's adapted connection through its private attributes (`_transaction`,
`_start_transaction`, `_handle_exception`); the kit's and routing's driver tests fail if an
SQLAlchemy upgrade changes them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

_CONNECTION = "sbkit.driver_connection"  # in the session's info: (transaction, adapted, error)


async def fetch(
    session: AsyncSession, sql: str, args: list[Any], *, begin: bool = True
) -> list[Any] | None:
    """The rows of `sql` (asyncpg's `$n` parameters) run in the session's transaction on its
    asyncpg connection. None (nothing run) if the database is not PostgreSQL, or — with
    `begin=False` — if the transaction has not begun on the connection yet (the caller runs the
    statement through the session then); with `begin=True` the statement may be the
    transaction's first (BEGIN is sent first, as the session would)."""
    found = await _connection(session)
    if found is None:
        return None
    adapted, dbapi_error = found
    if not begin and adapted._transaction is None:
        return None
    try:
        if adapted._transaction is None:  # the transaction's first statement: BEGIN first
            await adapted._start_transaction()
        rows: list[Any] = await adapted.driver_connection.fetch(sql, *args)
        return rows
    except Exception as exc:
        try:
            adapted._handle_exception(exc)  # asyncpg's error as the dialect's DBAPI error
        except Exception as translated:  # noqa: BLE001 - wrapped as the session wraps it
            raise DBAPIError.instance(sql, args, translated, dbapi_error) from exc
        raise


async def _connection(session: AsyncSession) -> tuple[Any, type[Exception]] | None:
    """The adapted driver connection of the session's current transaction and the DBAPI's base
    error, remembered for the transaction (looking it up costs ~18 µs of CPU); None if this is
    not PostgreSQL."""
    transaction = session.sync_session.get_transaction()
    remembered = session.info.get(_CONNECTION)
    if transaction is not None and remembered is not None and remembered[0] is transaction:
        return remembered[1], remembered[2]
    conn = await session.connection()  # checks a connection out (its ping) if none yet
    if conn.dialect.name != "postgresql":
        return None
    adapted: Any = (await conn.get_raw_connection()).dbapi_connection  # the dialect's adapter
    error: type[Exception] = conn.dialect.loaded_dbapi.Error
    session.info[_CONNECTION] = (session.sync_session.get_transaction(), adapted, error)
    return adapted, error
