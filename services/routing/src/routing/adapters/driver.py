"""The decision's hot statements on the session's own asyncpg connection, compiled once.

Executing a cached Core statement through the session still costs ~200 µs of client CPU per
call (cache key, execution context, parameter and result processing); the same statement on
the driver connection costs a fifth of that. `Prepared` compiles a statement once for asyncpg
and runs it on the connection of the session's transaction (same transaction, same locks).
Errors are raised as SQLAlchemy raises its own (`DBAPIError` with the driver's error as `orig`,
so deadlock retries still recognise them). Only for statements whose parameters and results
need no type processing beyond what asyncpg does (strings, numbers, aware datetimes).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

_DIALECT = asyncpg_dialect()
# statements sent this way (the SQLAlchemy engine's events do not see them), for the benchmark
SENT = {"statements": 0}


@dataclass(frozen=True)
class Prepared:
    """A statement's SQL for asyncpg, its parameter names in order, their fixed values."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]
    row: type[tuple[Any, ...]]

    @classmethod
    def of(cls, statement: Any) -> Prepared:
        """Compile `statement` for asyncpg (its bound values that are not given later stay)."""
        compiled = statement.compile(dialect=_DIALECT)
        names = tuple(compiled.positiontup or ())
        fixed = {n: compiled.binds[n].value for n in names if not compiled.binds[n].required}
        row = namedtuple("Row", list(statement.selected_columns.keys()))  # type: ignore[misc]
        return cls(compiled.string, names, fixed, row)

    async def fetch(self, session: AsyncSession, params: dict[str, Any]) -> list[Any] | None:
        """The rows (named tuples, like SQLAlchemy's rows), or None when the session's
        transaction has not begun on its connection yet (the caller runs the statement through
        the session then)."""
        values = self.fixed | params
        args = [values[n] for n in self.names]
        records = await _run(session, self.sql, args, many=False)
        return None if records is None else [self.row(*r) for r in records]


@dataclass(frozen=True)
class PreparedInsert:
    """An INSERT of every given column, compiled once for asyncpg, with the columns' own
    parameter processing (JSON documents, UTC datetimes) applied per row."""

    sql: str
    columns: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, table: Table, columns: Sequence[str]) -> PreparedInsert:
        """The insert of `columns` into `table`."""
        compiled = insert(table).compile(dialect=_DIALECT, column_keys=list(columns))
        names = tuple(compiled.positiontup or ())
        by_name = {bp.key: bp.type for bp in compiled.binds.values()}
        processors = tuple(
            by_name[n].dialect_impl(_DIALECT).bind_processor(_DIALECT) for n in names
        )
        return cls(compiled.string, names, processors)

    async def executemany(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> bool:
        """Insert the rows; False (nothing done) when the session's transaction has not begun on
        its connection yet (the caller inserts through the session then)."""
        args = [
            [
                row[c] if p is None else p(row[c])
                for c, p in zip(self.columns, self.processors, strict=True)
            ]
            for row in rows
        ]
        return await _run(session, self.sql, args, many=True) is not None


async def _run(session: AsyncSession, sql: str, args: list[Any], *, many: bool) -> Any:
    """Run on the driver connection of the session's transaction; None if it has not begun
    there (or the database is not PostgreSQL)."""
    conn = await session.connection()
    if conn.dialect.name != "postgresql":
        return None
    adapted = (await conn.get_raw_connection()).dbapi_connection
    if adapted is None or getattr(adapted, "_transaction", None) is None:
        return None
    driver = adapted.driver_connection
    SENT["statements"] += 1
    try:
        if many:
            await driver.executemany(sql, args)
            return True
        return await driver.fetch(sql, *args)
    except Exception as exc:
        try:
            adapted._handle_exception(exc)  # the DBAPI error SQLAlchemy would have seen
        except Exception as translated:  # noqa: BLE001 - wrapped as SQLAlchemy does
            raise DBAPIError.instance(
                sql, args, translated, conn.dialect.loaded_dbapi.Error
            ) from exc
        raise
