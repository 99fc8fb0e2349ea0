"""Unit of work: one session, one transaction; the only place that commits; collects outbox rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbkit.db.inbox import claim, claim_many
from sbkit.db.tables import KitTables
from sbkit.observability import trace_headers


def event_headers(event: CloudEvent[Any]) -> list[list[str]]:
    """Kafka headers of an event: CloudEvents attributes for routing without parsing, trace context."""
    pairs = [
        ("content-type", b"application/cloudevents+json"),
        ("ce_id", event.id.encode()),
        ("ce_type", event.type.encode()),
        ("ce_tenantid", event.tenantid.encode()),
        *trace_headers(),
    ]
    return [[k, v.decode()] for k, v in pairs]


class OpenUnits:
    """Which tasks are inside a unit of work now, so that a stop cancels them only outside one:
    cancelled inside, a write is lost after its side effects (a notification sent, not recorded)."""

    def __init__(self) -> None:
        self._depth: dict[asyncio.Task[Any], int] = {}
        self._left: dict[asyncio.Task[Any], asyncio.Future[None]] = {}

    def enter(self) -> None:
        """The current task opens a unit of work."""
        task = asyncio.current_task()
        if task is not None:
            self._depth[task] = self._depth.get(task, 0) + 1

    def leave(self) -> None:
        """The current task closed a unit of work."""
        task = asyncio.current_task()
        if task is None or task not in self._depth:
            return
        self._depth[task] -= 1
        if not self._depth[task]:
            del self._depth[task]
            left = self._left.pop(task, None)
            if left is not None and not left.done():
                left.set_result(None)

    async def cancel_outside(self, task: asyncio.Task[Any]) -> None:
        """Cancel `task` at once if it is outside every unit of work, else as soon as it leaves
        the one it is in (the cancellation lands where the task then waits, outside it)."""
        while task in self._depth and not task.done():
            left = self._left.setdefault(task, asyncio.get_running_loop().create_future())
            await asyncio.wait([left, task], return_when=asyncio.FIRST_COMPLETED)
        task.cancel()


class UnitOfWork:
    """A transaction; events emitted inside it reach the bus only if it commits."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        tables: KitTables,
        *,
        on_commit: Callable[[], None] | None = None,
        open_units: OpenUnits | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._tables = tables
        self._on_commit = on_commit
        self._open_units = open_units
        self._emitted = 0
        self.session: AsyncSession

    async def __aenter__(self) -> Self:
        if self._open_units is not None:
            self._open_units.enter()  # before the first await: a stop sees it from here on
        self.session = self._sessionmaker()
        try:
            await self.session.begin()
        except BaseException:
            if self._open_units is not None:
                self._open_units.leave()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.session.in_transaction():
                await self.session.rollback()
            await self.session.close()
        finally:
            if self._open_units is not None:
                self._open_units.leave()

    async def seen(self, *, consumer: str, event_id: str) -> bool:
        """True if this consumer already processed the event; else records it (inbox)."""
        return not await claim(
            self.session, self._tables.inbox, consumer=consumer, event_id=event_id
        )

    async def unseen(self, *, consumer: str, event_ids: Sequence[str]) -> set[str]:
        """The ids this consumer has not processed yet; records them all (inbox, one statement)."""
        return await claim_many(
            self.session, self._tables.inbox, consumer=consumer, event_ids=event_ids
        )

    async def emit(self, event: CloudEvent[Any], *, key: str, topic: str | None = None) -> None:
        """Queue an event in the outbox, in this transaction."""
        await self.session.execute(
            insert(self._tables.outbox).values(
                topic=topic or event.data.topic,
                key=key,
                value=encode(event),
                headers=event_headers(event),
            )
        )
        self._emitted += 1

    async def emit_many(self, events: Sequence[tuple[CloudEvent[Any], str]]) -> None:
        """Queue several (event, key) pairs in the outbox with one statement, in this transaction."""
        if not events:
            return
        await self.session.execute(insert(self._tables.outbox), self.outbox_rows(events))

    def outbox_rows(self, events: Sequence[tuple[CloudEvent[Any], str]]) -> list[dict[str, Any]]:
        """The outbox rows of (event, key) pairs, for a caller that inserts them itself in this
        transaction (with other rows, in one statement); they count as emitted, so a commit
        wakes the relay."""
        rows = [
            {"topic": e.data.topic, "key": k, "value": encode(e), "headers": event_headers(e)}
            for e, k in events
        ]
        self._emitted += len(rows)
        return rows

    async def commit(self) -> None:
        """Commit the transaction, then wake the outbox relay if events were emitted."""
        await self.session.commit()
        if self._emitted and self._on_commit:
            self._on_commit()
        self._emitted = 0
