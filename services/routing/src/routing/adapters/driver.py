"""The decision and a consumer batch's inserts on the session's own asyncpg connection.

Executing a cached Core statement through the session still costs ~200 µs of client CPU per
call (cache key, execution context, parameter and result processing); the same statement on
the driver connection costs a fifth of that. Both kinds here are compiled once and run by the
kit's `sbkit.db.driver.fetch` on the connection of the session's transaction (same
transaction, same locks; only once the transaction has begun there, else the caller uses the
session); errors are raised as SQLAlchemy raises its own (`DBAPIError` with the driver's error
as `orig`, so deadlock retries still recognise them). Results need no type processing beyond
what asyncpg does (strings, numbers, aware UTC datetimes; JSON is decoded by the codec
SQLAlchemy's dialect installs); `PreparedInsert`, and `Prepared` compiled `processed`, apply the
parameters' bind processing (`_processor`: JSON documents serialised; datetimes left to asyncpg).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from sbkit.db import driver
from sbkit.db.types import UtcDateTime

_DIALECT = asyncpg_dialect()
# statements sent this way (the SQLAlchemy engine's events do not see them), for the benchmark
SENT = {"statements": 0}


@dataclass(frozen=True)
class Prepared:
    """A statement's SQL for asyncpg, its parameter names in order, their fixed values, and the
    bind processing of those that need it (by position; only when compiled `processed`)."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]
    row: type[tuple[Any, ...]]
    processors: tuple[tuple[int, Callable[[Any], Any]], ...] = ()

    @classmethod
    def of(cls, statement: Any, *, processed: bool = False) -> Prepared:
        """Compile `statement` for asyncpg (its bound values that are not given later stay);
        `processed`: apply its parameters' bind processing (JSON documents, see `_processor`).
        The rows have the columns it selects or returns."""
        compiled = statement.compile(dialect=_DIALECT)
        names = tuple(compiled.positiontup or ())
        fixed = {n: compiled.binds[n].value for n in names if not compiled.binds[n].required}
        selected = getattr(statement, "selected_columns", None)
        columns = selected if selected is not None else statement.exported_columns
        row = namedtuple("Row", list(columns.keys()))  # type: ignore[misc]
        processors: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
        if processed:
            found = ((i, _processor(compiled.binds[n].type)) for i, n in enumerate(names))
            processors = tuple((i, p) for i, p in found if p is not None)
        return cls(compiled.string, names, fixed, row, processors)

    async def fetch(self, session: AsyncSession, params: dict[str, Any]) -> list[Any] | None:
        """The rows (named tuples, like SQLAlchemy's rows), or None when the session's
        transaction has not begun on its connection yet (the caller runs the statement through
        the session then)."""
        values = self.fixed | params
        args = [values[n] for n in self.names]
        for i, process in self.processors:
            args[i] = process(args[i])
        records = await _run(session, self.sql, args)
        return None if records is None else [self.row(*r) for r in records]


@dataclass(frozen=True)
class PreparedInsert:
    """An INSERT of many rows as one execution (`INSERT … SELECT * FROM unnest($1::type[], …)`:
    one array per column), with the columns' own parameter processing (JSON documents, UTC
    datetimes); PostgreSQL plans and starts the insert once, not once per row."""

    table: str
    columns: tuple[str, ...]
    types: tuple[str, ...]  # each column's array type, as cast in the SQL
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, table: Table, columns: Sequence[str]) -> PreparedInsert:
        """The insert of `columns` into `table`."""
        types = [table.c[c].type for c in columns]
        processors = tuple(_processor(t) for t in types)
        names = tuple(f"{t.compile(dialect=_DIALECT)}[]" for t in types)
        return cls(table.name, tuple(columns), names, processors)

    @property
    def sql(self) -> str:
        """The statement alone (its arrays are $1, $2, …)."""
        return self.sql_from(1)

    def sql_from(self, first: int) -> str:
        """The statement with its arrays numbered from `first`, in the given rows' order."""
        arrays = ", ".join(f"${i}::{t}" for i, t in enumerate(self.types, start=first))
        columns = ", ".join(f'"{c}"' for c in self.columns)
        return (
            f'INSERT INTO "{self.table}" ({columns}) SELECT {columns}'
            f" FROM unnest({arrays}) WITH ORDINALITY AS r({columns}, n) ORDER BY n"
        )

    def arrays(self, rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
        """The statement's arguments for `rows`: one processed array per column."""
        return [
            [row[c] for row in rows] if p is None else [p(row[c]) for row in rows]
            for c, p in zip(self.columns, self.processors, strict=True)
        ]

    async def insert(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> bool:
        """Insert the rows; False (nothing done) when the session's transaction has not begun on
        its connection yet (the caller inserts through the session then)."""
        return await _run(session, self.sql, self.arrays(rows)) is not None


def _processor(type_: Any) -> Callable[[Any], Any] | None:
    """A column type's bind processing for asyncpg, but none for `UtcDateTime`: asyncpg writes an
    aware datetime at its instant (converting it to UTC itself), and a naive one is passed
    unchanged either way."""
    if isinstance(type_, UtcDateTime):
        return None
    found: Callable[[Any], Any] | None = type_.dialect_impl(_DIALECT).bind_processor(_DIALECT)
    return found


async def insert_together(
    session: AsyncSession, parts: Sequence[tuple[PreparedInsert, Sequence[dict[str, Any]]]]
) -> bool:
    """Several tables' inserts as one statement (all but the last as data-modifying CTEs, each
    run once and to completion; in the given order, a table's rows in theirs): one round trip
    instead of one per table. False (nothing done) as `PreparedInsert.insert`."""
    if len(parts) == 1:
        return await parts[0][0].insert(session, parts[0][1])
    sql = _together(tuple(p for p, _ in parts))
    args = [array for p, rows in parts for array in p.arrays(rows)]
    return await _run(session, sql, args) is not None


@lru_cache(maxsize=64)
def _together(inserts: tuple[PreparedInsert, ...]) -> str:
    first, ctes = 1, []
    for n, part in enumerate(inserts[:-1]):
        ctes.append(f"w{n} AS ({part.sql_from(first)})")
        first += len(part.columns)
    return f"WITH {', '.join(ctes)} {inserts[-1].sql_from(first)}"


async def fetch_parts(
    session: AsyncSession, parts: Sequence[tuple[Prepared, dict[str, Any]]]
) -> list[list[Any]] | None:
    """Several statements' rows in one round trip (`UNION ALL`, so one snapshot): each part's
    rows as `Prepared.fetch` gives them, in the parts' order (a part's own ORDER BY is not
    kept: the caller orders them) as asyncpg records (by position after the part number, or
    by name); None as `Prepared.fetch`. The parts must select the same columns."""
    sql = _tagged_union(tuple(p.sql for p, _ in parts), tuple(len(p.names) for p, _ in parts))
    args = []
    for prepared, params in parts:
        values = prepared.fixed | params
        args += [values[n] for n in prepared.names]
    records = await _run(session, sql, args)
    if records is None:
        return None
    found: list[list[Any]] = [[] for _ in parts]
    for record in records:
        found[record[0]].append(record)
    return found


_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=256)
def _tagged_union(sqls: tuple[str, ...], counts: tuple[int, ...]) -> str:
    """`SELECT <n> AS part, p.* FROM (<statement n>) AS p UNION ALL …`, each statement's
    parameters renumbered after the previous ones'."""
    selects, first = [], 0
    for n, (sql, count) in enumerate(zip(sqls, counts, strict=True)):

        def shifted(match: re.Match[str], by: int = first) -> str:
            return f"${int(match.group(1)) + by}"

        renumbered = _PLACEHOLDER.sub(shifted, sql)
        selects.append(f"SELECT {n} AS part, p.* FROM ({renumbered}) AS p")
        first += count
    return " UNION ALL ".join(selects)


async def fetch_sql(session: AsyncSession, sql: str, args: list[Any]) -> list[Any] | None:
    """Rows (asyncpg records) of a statement written for asyncpg, or None as `Prepared.fetch`."""
    records: list[Any] | None = await _run(session, sql, args)
    return records


async def _run(session: AsyncSession, sql: str, args: list[Any]) -> Any:
    """Run on the driver connection of the session's transaction; None if it has not begun
    there (or the database is not PostgreSQL)."""
    rows = await driver.fetch(session, sql, args, begin=False)
    if rows is not None:
        SENT["statements"] += 1
    return rows
