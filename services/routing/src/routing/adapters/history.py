"""Queries of ticket history, durable timers and classification rules (mixed into the repository)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Row, any_, bindparam, delete, false, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.adapters import orm
from routing.adapters.driver import Prepared
from routing.adapters.writes import TenantQueries

# Built once: SQLAlchemy compiles (and caches) a statement per set of parameter names, while a
# fresh `insert(...).values(**row)` costs a cache key over every value on every call.
_ADD_MESSAGE = insert(orm.ticket_messages)
_ADD_TIMERS = insert(orm.timers)
_TM = orm.timers.c


def _cancelling(*metric: Any) -> Prepared:
    """`cancel_timers` for the driver connection (kinds as one array), of a metric if given."""
    return Prepared.of(
        update(orm.timers)
        .where(
            _TM.tenant_id == bindparam("tenant"),
            _TM.ticket_id == bindparam("ticket"),
            _TM.done.is_(False),
            _TM.kind == any_(bindparam("kinds", type_=ARRAY(_TM.kind.type))),
            *metric,
        )
        .values(done=True)
    )


_CANCEL = {False: _cancelling(), True: _cancelling(_TM.metric == bindparam("metric"))}


class HistoryQueries(TenantQueries):
    """Messages, timers and rules of one tenant, in the caller's transaction."""

    async def bump_config(self) -> None:
        """Mark the tenant's configuration changed (implemented by the repository)."""
        raise NotImplementedError

    # messages ---------------------------------------------------------------
    async def add_message(self, ticket_id: str, **values: Any) -> None:
        """Append a message (inbound, outbound or internal note) to a ticket's history."""
        values.setdefault("origin_ticket_id", ticket_id)
        row = {"tenant_id": self.tenant, "ticket_id": ticket_id, **values}
        if not self._append("messages", [row]):
            await self.execute(_ADD_MESSAGE, row)

    async def has_message(self, message_id: str) -> bool:
        """Whether an inbound message id is already in some ticket's history."""
        m = orm.ticket_messages.c
        q = select(m.id).where(m.tenant_id == self.tenant, m.message_id == message_id).limit(1)
        return (await self.execute(q)).first() is not None

    async def messages(self, ticket_id: str) -> Sequence[Row[Any]]:
        """A ticket's history, oldest first."""
        m = orm.ticket_messages.c
        q = select(orm.ticket_messages).where(m.tenant_id == self.tenant, m.ticket_id == ticket_id)
        return await self._all(q.order_by(m.at, m.id))

    async def move_messages(self, from_ticket: str, to_ticket: str) -> None:
        """Move a ticket's history to another ticket (case merge)."""
        m = orm.ticket_messages.c
        await self.execute(
            update(orm.ticket_messages)
            .where(m.tenant_id == self.tenant, m.ticket_id == from_ticket)
            .values(ticket_id=to_ticket)
        )

    async def move_messages_back(self, from_ticket: str, origin: str) -> None:
        """Return the messages that originated in `origin` (case split after an undone merge)."""
        m = orm.ticket_messages.c
        await self.execute(
            update(orm.ticket_messages)
            .where(
                m.tenant_id == self.tenant, m.ticket_id == from_ticket, m.origin_ticket_id == origin
            )
            .values(ticket_id=origin)
        )

    # timers -----------------------------------------------------------------
    async def add_timer(self, ticket_id: str, **values: Any) -> None:
        """Schedule a durable timer."""
        await self.execute(
            insert(orm.timers).values(
                tenant_id=self.tenant, ticket_id=ticket_id, done=False, **values
            )
        )

    async def add_timers(self, ticket_id: str, rows: list[dict[str, Any]]) -> None:
        """Schedule several durable timers in one statement."""
        if rows:
            base = {"tenant_id": self.tenant, "ticket_id": ticket_id, "done": False}
            full = [base | r for r in rows]
            if not self._append("timers", full):
                await self.execute(_ADD_TIMERS, full)

    async def cancel_timers(
        self, ticket_id: str, kinds: Iterable[str], metric: str | None = None
    ) -> None:
        """Drop pending timers of a ticket (of a metric when given)."""
        params = {"tenant": self.tenant, "ticket": ticket_id, "kinds": list(kinds)}
        on_driver = _CANCEL[bool(metric)]
        done = await self._on_driver(on_driver, params | {"metric": metric}, tables=("timers",))
        if done is not None:
            return
        c = orm.timers.c
        conds = [
            c.tenant_id == self.tenant,
            c.ticket_id == ticket_id,
            c.done.is_(False),
            c.kind.in_(list(kinds)),
        ]
        if metric:
            conds.append(c.metric == metric)
        await self.execute(update(orm.timers).where(*conds).values(done=True), tables=("timers",))

    async def timers_of(self, ticket_id: str) -> Sequence[Row[Any]]:
        """Pending timers of a ticket."""
        c = orm.timers.c
        q = select(orm.timers).where(
            c.tenant_id == self.tenant, c.ticket_id == ticket_id, c.done.is_(False)
        )
        return await self._all(q)

    # rules ------------------------------------------------------------------
    async def rules(self) -> Sequence[Row[Any]]:
        """The tenant's classification rules (empty: built-in defaults apply)."""
        r = orm.rules.c
        return await self._all(select(orm.rules).where(r.tenant_id == self.tenant).order_by(r.id))

    async def replace_rules(self, rules: Iterable[dict[str, Any]]) -> None:
        """Replace every rule of the tenant."""
        await self.bump_config()
        await self.execute(delete(orm.rules).where(orm.rules.c.tenant_id == self.tenant))
        rows = [{"tenant_id": self.tenant, **r} for r in rules]
        if rows:
            await self.execute(insert(orm.rules), rows)


async def due_timers(session: AsyncSession, now: datetime, *, limit: int) -> Sequence[Row[Any]]:
    """Timers of every tenant due by `now`, locked (skipping rows other workers hold on PG)."""
    c = orm.timers.c
    q = (
        select(orm.timers)
        .where(c.done == false(), c.fire_at <= now)  # `= false`: the partial index's predicate
        .order_by(c.fire_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return (await session.execute(q)).all()


async def finish_timer(session: AsyncSession, timer_id: int) -> None:
    """Mark a timer fired."""
    await session.execute(update(orm.timers).where(orm.timers.c.id == timer_id).values(done=True))
