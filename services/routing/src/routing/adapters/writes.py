"""Rows a consumer batch appends (tickets, messages, timers), written set-at-a-time.

While a batch is applied its new rows wait in the session; one statement per table writes them
all when the batch ends. Every other statement of the repository on those tables writes the
waiting rows first (`TenantQueries.execute`), so a later message of the batch reads what an
earlier one wrote, exactly as one message per transaction would. Only the agent statements of a
decision (candidates, reservation) skip that: they never read these tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Result, Row, insert
from sqlalchemy.ext.asyncio import AsyncSession

from routing.adapters import orm
from routing.adapters.driver import Prepared, PreparedInsert, insert_together

_KEY = "routing.pending_rows"  # in the session's info while a batch is applied
# Built once; every row carries every column (executemany binds the same names for all rows).
_INSERTS = {
    "tickets": insert(orm.tickets),
    "messages": insert(orm.ticket_messages),
    "timers": insert(orm.timers),
}
_COLUMNS = {
    "tickets": tuple(c.name for c in orm.tickets.c),
    "messages": tuple(c.name for c in orm.ticket_messages.c if c.name != "id"),
    "timers": tuple(c.name for c in orm.timers.c if c.name != "id"),
}
_EMPTY = {table: dict.fromkeys(columns) for table, columns in _COLUMNS.items()}  # all NULL

# the same inserts on the driver connection (`driver.PreparedInsert`)
_DRIVER_INSERTS = {
    name: PreparedInsert.of(stmt.table, _COLUMNS[name])  # type: ignore[arg-type]
    for name, stmt in _INSERTS.items()
}
# the batch's events (`UnitOfWork.outbox_rows`), written with its rows
_OUTBOX = insert(orm.kit.outbox)
_DRIVER_OUTBOX = PreparedInsert.of(orm.kit.outbox, ("topic", "key", "value", "headers"))


@dataclass
class PendingRows:
    """New rows of one transaction not written yet, by table, in the order they were added."""

    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {table: [] for table in _INSERTS}
    )
    ticket_ids: set[str] = field(default_factory=set)  # of the waiting tickets

    def add(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        """Queue a row (missing columns are NULL); returns the complete row."""
        full = _EMPTY[table] | row
        self.rows[table].append(full)
        if table == "tickets":
            self.ticket_ids.add(str(full["id"]))
        return full

    async def write(
        self,
        session: AsyncSession,
        tables: Iterable[str] | None = None,
        *,
        outbox: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Insert the waiting rows (of `tables`, default all; tickets first) and then the
        `outbox` rows given, and forget them: on PostgreSQL in one statement (one round trip,
        not one per table), else one statement per table."""
        wanted = set(self.rows if tables is None else tables)
        parts: list[tuple[PreparedInsert, Any, Sequence[dict[str, Any]]]] = []
        for table, rows in self.rows.items():
            if rows and table in wanted:
                self.rows[table] = []
                if table == "tickets":
                    self.ticket_ids.clear()
                parts.append((_DRIVER_INSERTS[table], _INSERTS[table], rows))
        if outbox:
            parts.append((_DRIVER_OUTBOX, _OUTBOX, outbox))
        if not parts or await insert_together(session, [(p, r) for p, _, r in parts]):
            return
        for _, statement, written in parts:
            await session.execute(statement, written)


def start(session: AsyncSession) -> PendingRows | None:
    """Collect this session's new rows from now on; None if already collecting (the outer
    block writes them)."""
    if _KEY in session.info:
        return None
    pending = PendingRows()
    session.info[_KEY] = pending
    return pending


def stop(session: AsyncSession) -> None:
    """Stop collecting (the caller writes or drops what was collected)."""
    session.info.pop(_KEY, None)


def pending(session: AsyncSession) -> PendingRows | None:
    """The session's collector, if a batch is being applied."""
    found: PendingRows | None = session.info.get(_KEY)
    return found


class TenantQueries:
    """Statements of one tenant in the caller's transaction, after the waiting rows."""

    session: AsyncSession
    tenant: str

    async def execute(
        self,
        statement: Any,
        params: Any = None,
        *,
        tables: Iterable[str] | None = None,
        ticket: str | None = None,
    ) -> Result[Any]:
        """Run a statement once the rows waiting in this transaction are written (only those of
        `tables` when given: the tables the statement reads or changes, by name in `_INSERTS`).
        `ticket`: the statement reads or changes that one ticket's row only, so the waiting
        tickets are written only if it is among them (a message joining an open case in a
        batch no longer splits the batch's ticket insert in two)."""
        await self._written_first(tables, ticket)
        return await self.session.execute(statement, params)

    async def _written_first(self, tables: Iterable[str] | None, ticket: str | None) -> None:
        waiting = pending(self.session)
        if waiting is not None and (ticket is None or ticket in waiting.ticket_ids):
            await waiting.write(self.session, tables)

    async def _one(
        self,
        q: Any,
        params: Any = None,
        *,
        tables: Iterable[str] | None = None,
        ticket: str | None = None,
        prepared: Prepared | None = None,
    ) -> Row[Any] | None:
        """The first row of `q` (as `execute` runs it). `prepared`: `q` compiled for the driver
        connection, used while a batch is applied (see `_on_driver`; the row is a named tuple
        with the same attributes)."""
        if prepared is not None:
            rows = await self._on_driver(prepared, params, tables=tables, ticket=ticket)
            if rows is not None:
                return rows[0] if rows else None
        return (await self.execute(q, params, tables=tables, ticket=ticket)).first()

    async def _on_driver(
        self,
        prepared: Prepared,
        params: dict[str, Any],
        *,
        tables: Iterable[str] | None,
        ticket: str | None = None,
    ) -> list[Any] | None:
        """The rows of `prepared` on the driver connection (a fifth of the session's client
        CPU per statement) after the waiting rows, as `execute` runs a statement, while a batch
        is applied; None outside one or before the transaction has begun on its connection
        (the caller runs its statement through the session then)."""
        if pending(self.session) is None:
            return None
        await self._written_first(tables, ticket)
        return await prepared.fetch(self.session, params)

    async def _all(self, q: Any) -> Sequence[Row[Any]]:
        return (await self.execute(q)).all()

    def _append(self, table: str, rows: list[dict[str, Any]]) -> bool:
        """Queue rows when a batch is applied (False: the caller writes them now)."""
        waiting = pending(self.session)
        if waiting is None:
            return False
        for row in rows:
            waiting.add(table, row)
        return True

    def _new_ticket(self, row: dict[str, Any]) -> Any | None:
        """Queue a ticket when a batch is applied: the row as RETURNING would give it, else None."""
        waiting = pending(self.session)
        return None if waiting is None else SimpleNamespace(**waiting.add("tickets", row))
