"""Every query of routing, scoped to one tenant (another tenant's rows are invisible)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, case, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.adapters import orm

ACTIVE = ("new", "open", "pending")
_RANK = case({"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=orm.tickets.c.priority, else_=9)
T = orm.tickets.c


class RoutingRepository:
    """Queues, agents, tickets, timers and rules of one tenant, in the caller's transaction."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant = tenant_id

    @property
    def postgres(self) -> bool:
        """Whether row locks with SKIP LOCKED are available."""
        return self.session.get_bind().dialect.name == "postgresql"

    async def _one(self, q: Any) -> Row[Any] | None:
        return (await self.session.execute(q)).first()

    async def _all(self, q: Any) -> Sequence[Row[Any]]:
        return (await self.session.execute(q)).all()

    # queues -----------------------------------------------------------------
    async def queues(self) -> Sequence[Row[Any]]:
        """All queues, by position."""
        q = orm.queues
        return await self._all(
            select(q).where(q.c.tenant_id == self.tenant).order_by(q.c.position, q.c.id)
        )

    async def queue(self, queue_id: str) -> Row[Any] | None:
        """One queue."""
        q = orm.queues
        return await self._one(select(q).where(q.c.tenant_id == self.tenant, q.c.id == queue_id))

    async def put_queue(self, queue_id: str, values: dict[str, Any], *, exists: bool) -> None:
        """Insert or replace a queue."""
        q = orm.queues
        if exists:
            await self.session.execute(
                update(q).where(q.c.tenant_id == self.tenant, q.c.id == queue_id).values(**values)
            )
        else:
            await self.session.execute(
                insert(q).values(id=queue_id, tenant_id=self.tenant, **values)
            )

    async def delete_queue(self, queue_id: str) -> None:
        """Remove a queue."""
        q = orm.queues
        await self.session.execute(
            delete(q).where(q.c.tenant_id == self.tenant, q.c.id == queue_id)
        )

    # agents -----------------------------------------------------------------
    async def agents(self) -> Sequence[Row[Any]]:
        """All agents."""
        a = orm.agents
        return await self._all(select(a).where(a.c.tenant_id == self.tenant).order_by(a.c.id))

    async def agent(self, agent_id: str, *, lock: bool = False) -> Row[Any] | None:
        """One agent (locked FOR UPDATE when asked)."""
        a = orm.agents
        q = select(a).where(a.c.tenant_id == self.tenant, a.c.id == agent_id)
        return await self._one(q.with_for_update() if lock else q)

    async def online_agents(self) -> Sequence[Row[Any]]:
        """Agents currently online."""
        a = orm.agents
        return await self._all(
            select(a).where(a.c.tenant_id == self.tenant, a.c.presence == "online")
        )

    async def put_agent(self, agent_id: str, values: dict[str, Any], *, exists: bool) -> None:
        """Insert or update an agent."""
        a = orm.agents
        if exists:
            await self.session.execute(
                update(a).where(a.c.tenant_id == self.tenant, a.c.id == agent_id).values(**values)
            )
        else:
            await self.session.execute(
                insert(a).values(id=agent_id, tenant_id=self.tenant, **values)
            )

    async def delete_agent(self, agent_id: str) -> None:
        """Remove an agent."""
        a = orm.agents
        await self.session.execute(
            delete(a).where(a.c.tenant_id == self.tenant, a.c.id == agent_id)
        )

    # claims -----------------------------------------------------------------
    async def reserve(self, agent_id: str, weight: int, now: datetime) -> bool:
        """Atomically take `weight` capacity units of an online agent; False if it would not fit."""
        a = orm.agents.c
        result = await self.session.execute(
            update(orm.agents)
            .where(
                a.tenant_id == self.tenant,
                a.id == agent_id,
                a.presence == "online",
                a.load + weight <= a.capacity,
            )
            .values(load=a.load + weight, last_assigned_at=now, idle_since=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, agent_id: str, weight: int, now: datetime) -> None:
        """Give capacity back; an agent whose load reaches zero becomes idle now."""
        a = orm.agents.c
        new_load = case((a.load - weight < 0, 0), else_=a.load - weight)
        await self.session.execute(
            update(orm.agents)
            .where(a.tenant_id == self.tenant, a.id == agent_id)
            .values(load=new_load, idle_since=case((new_load == 0, now), else_=a.idle_since))
        )

    async def claim(self, ticket_id: str, agent_id: str, now: datetime) -> bool:
        """Atomically make `agent_id` the owner of an unowned active ticket; False if taken."""
        result = await self.session.execute(
            update(orm.tickets)
            .where(
                T.tenant_id == self.tenant,
                T.id == ticket_id,
                T.agent_id.is_(None),
                T.status.in_(ACTIVE),
            )
            .values(agent_id=agent_id, last_agent_id=agent_id, updated_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # tickets ----------------------------------------------------------------
    async def ticket(self, ticket_id: str, *, lock: bool = False) -> Row[Any] | None:
        """One ticket (locked FOR UPDATE when asked)."""
        q = select(orm.tickets).where(T.tenant_id == self.tenant, T.id == ticket_id)
        return await self._one(q.with_for_update() if lock else q)

    async def customer_cases(self, customer_ids: Iterable[str]) -> Sequence[Row[Any]]:
        """Active and resolved tickets of customers (candidates for joining)."""
        q = select(orm.tickets).where(
            T.tenant_id == self.tenant,
            T.customer_id.in_(list(customer_ids)),
            T.status.in_((*ACTIVE, "resolved")),
        )
        return await self._all(q)

    async def thread_owners(self, refs: Iterable[str]) -> dict[str, set[str]]:
        """Ticket id → the thread ids among `refs` its messages carry."""
        m = orm.ticket_messages.c
        refs = list(refs)
        if not refs:
            return {}
        rows = await self._all(
            select(m.ticket_id, m.thread_id).where(
                m.tenant_id == self.tenant, m.thread_id.in_(refs)
            )
        )
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row.ticket_id, set()).add(row.thread_id)
        return found

    async def tickets_by_ids(self, ids: Iterable[str]) -> Sequence[Row[Any]]:
        """Tickets by id."""
        return await self._all(
            select(orm.tickets).where(T.tenant_id == self.tenant, T.id.in_(list(ids)))
        )

    async def add_ticket(self, values: dict[str, Any]) -> str:
        """Insert a ticket; returns its id."""
        ticket_id = values.pop("id", None) or str(uuid.uuid4())
        await self.session.execute(
            insert(orm.tickets).values(id=ticket_id, tenant_id=self.tenant, **values)
        )
        return ticket_id

    async def update_ticket(self, ticket_id: str, **values: Any) -> None:
        """Change ticket columns."""
        await self.session.execute(
            update(orm.tickets)
            .where(T.tenant_id == self.tenant, T.id == ticket_id)
            .values(**values)
        )

    async def list_tickets(
        self, filters: dict[str, Any], *, limit: int, offset: int
    ) -> Sequence[Row[Any]]:
        """Tickets matching equality filters (status, queue_id, agent_id, customer_id), newest first."""
        conds = [T.tenant_id == self.tenant] + [getattr(T, k) == v for k, v in filters.items() if v]
        q = select(orm.tickets).where(and_(*conds)).order_by(T.updated_at.desc(), T.id)
        return await self._all(q.limit(limit).offset(offset))

    async def waiting(self, queue_ids: Iterable[str] | None, *, limit: int) -> Sequence[Row[Any]]:
        """Unowned active tickets, highest priority then oldest (locked, skipping locked on PG)."""
        conds = [T.tenant_id == self.tenant, T.agent_id.is_(None), T.status.in_(ACTIVE)]
        if queue_ids is not None:
            conds.append(T.queue_id.in_(list(queue_ids)))
        q = select(orm.tickets).where(*conds).order_by(_RANK, T.queued_at, T.id).limit(limit)
        if self.postgres:
            q = q.with_for_update(skip_locked=True)
        return await self._all(q)

    async def owned_by(self, agent_id: str) -> Sequence[Row[Any]]:
        """Active tickets an agent owns."""
        q = select(orm.tickets).where(T.tenant_id == self.tenant, T.agent_id == agent_id)
        return await self._all(q.where(T.status.in_(ACTIVE)))

    async def move_customer(self, from_id: str, to_id: str, ticket_ids: Iterable[str]) -> None:
        """Give tickets to another customer id."""
        await self.session.execute(
            update(orm.tickets)
            .where(T.tenant_id == self.tenant, T.customer_id == from_id, T.id.in_(list(ticket_ids)))
            .values(customer_id=to_id)
        )

    # messages ---------------------------------------------------------------
    async def add_message(self, ticket_id: str, **values: Any) -> None:
        """Append a message (inbound, outbound or internal note) to a ticket's history."""
        values.setdefault("origin_ticket_id", ticket_id)
        await self.session.execute(
            insert(orm.ticket_messages).values(tenant_id=self.tenant, ticket_id=ticket_id, **values)
        )

    async def messages(self, ticket_id: str) -> Sequence[Row[Any]]:
        """A ticket's history, oldest first."""
        m = orm.ticket_messages.c
        q = select(orm.ticket_messages).where(m.tenant_id == self.tenant, m.ticket_id == ticket_id)
        return await self._all(q.order_by(m.at, m.id))

    async def move_messages(self, from_ticket: str, to_ticket: str) -> None:
        """Move a ticket's history to another ticket (case merge)."""
        m = orm.ticket_messages.c
        await self.session.execute(
            update(orm.ticket_messages)
            .where(m.tenant_id == self.tenant, m.ticket_id == from_ticket)
            .values(ticket_id=to_ticket)
        )

    async def move_messages_back(self, from_ticket: str, origin: str) -> None:
        """Return the messages that originated in `origin` (case split after an undone merge)."""
        m = orm.ticket_messages.c
        await self.session.execute(
            update(orm.ticket_messages)
            .where(
                m.tenant_id == self.tenant, m.ticket_id == from_ticket, m.origin_ticket_id == origin
            )
            .values(ticket_id=origin)
        )

    # timers -----------------------------------------------------------------
    async def add_timer(self, ticket_id: str, **values: Any) -> None:
        """Schedule a durable timer."""
        await self.session.execute(
            insert(orm.timers).values(
                tenant_id=self.tenant, ticket_id=ticket_id, done=False, **values
            )
        )

    async def cancel_timers(
        self, ticket_id: str, kinds: Iterable[str], metric: str | None = None
    ) -> None:
        """Drop pending timers of a ticket (of a metric when given)."""
        c = orm.timers.c
        conds = [
            c.tenant_id == self.tenant,
            c.ticket_id == ticket_id,
            c.done.is_(False),
            c.kind.in_(list(kinds)),
        ]
        if metric:
            conds.append(c.metric == metric)
        await self.session.execute(update(orm.timers).where(*conds).values(done=True))

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
        await self.session.execute(delete(orm.rules).where(orm.rules.c.tenant_id == self.tenant))
        rows = [{"tenant_id": self.tenant, **r} for r in rules]
        if rows:
            await self.session.execute(insert(orm.rules), rows)


async def due_timers(session: AsyncSession, now: datetime, *, limit: int) -> Sequence[Row[Any]]:
    """Timers of every tenant due by `now`, locked (skipping rows other workers hold on PG)."""
    c = orm.timers.c
    q = (
        select(orm.timers)
        .where(c.done.is_(False), c.fire_at <= now)
        .order_by(c.fire_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return (await session.execute(q)).all()


async def finish_timer(session: AsyncSession, timer_id: int) -> None:
    """Mark a timer fired."""
    await session.execute(update(orm.timers).where(orm.timers.c.id == timer_id).values(done=True))
