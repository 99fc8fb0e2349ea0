"""Every query of routing, scoped to one tenant (another tenant's rows are invisible)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, case, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from routing.adapters import orm
from routing.adapters.history import HistoryQueries

ACTIVE = ("new", "open", "pending")
_RANK = case({"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=orm.tickets.c.priority, else_=9)
T = orm.tickets.c


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_A = orm.agents.c
_POLICY_ORDER: dict[str, tuple[Any, ...]] = {
    "longest_idle": (_A.load > 0, func.coalesce(_A.idle_since, _A.last_assigned_at, _EPOCH), _A.id),
    "least_loaded": (
        _A.load * 1.0 / _A.capacity,
        func.coalesce(_A.last_assigned_at, _EPOCH),
        _A.id,
    ),
    "round_robin": (func.coalesce(_A.last_assigned_at, _EPOCH), _A.id),
}


@dataclass(frozen=True)
class Want:
    """What a case needs of an agent, for the SQL pre-filter (the domain re-checks)."""

    weight: int
    policy: str
    queue_id: str | None = None
    language: str | None = None
    skills: tuple[tuple[str, int], ...] = ()
    only: str | None = None


class RoutingRepository(HistoryQueries):
    """Queues, agents, tickets, timers and rules of one tenant, in the caller's transaction."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant = tenant_id
        self._queue_memo: dict[str, Row[Any] | None] = {}

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
        """One queue (remembered for the rest of this transaction)."""
        if queue_id not in self._queue_memo:
            q = orm.queues
            found = select(q).where(q.c.tenant_id == self.tenant, q.c.id == queue_id)
            self._queue_memo[queue_id] = await self._one(found)
        return self._queue_memo[queue_id]

    async def put_queue(self, queue_id: str, values: dict[str, Any], *, exists: bool) -> None:
        """Insert or replace a queue."""
        self._queue_memo.pop(queue_id, None)
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
        self._queue_memo.pop(queue_id, None)
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

    async def online_count(self, queue_id: str | None) -> int:
        """How many online agents serve a queue (the pool a decision looks at)."""
        a = orm.agents.c
        conds = [a.tenant_id == self.tenant, a.presence == "online"]
        if queue_id is not None:
            conds.append(or_(a.queue_keys == "", a.queue_keys.contains(f"|{queue_id}|")))
        found = await self.session.execute(
            select(func.count()).select_from(orm.agents).where(*conds)
        )
        return int(found.scalar_one())

    async def candidates(self, want: Want, *, limit: int) -> Sequence[Row[Any]]:
        """Online agents with room, the language and every skill, serving the queue, best first."""
        a = orm.agents.c
        conds = [
            a.tenant_id == self.tenant,
            a.presence == "online",
            a.load + want.weight <= a.capacity,
        ]
        if want.queue_id is not None:
            conds.append(or_(a.queue_keys == "", a.queue_keys.contains(f"|{want.queue_id}|")))
        if want.language is not None:
            conds.append(func.coalesce(a.languages[want.language].as_integer(), 0) > 0)
        for skill, level in want.skills:
            conds.append(func.coalesce(a.skills[skill].as_integer(), 0) >= level)
        if want.only is not None:
            conds.append(a.id == want.only)
        q = select(orm.agents).where(*conds).order_by(*_POLICY_ORDER[want.policy]).limit(limit)
        return await self._all(q)

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

    async def update_ticket(self, ticket_id: str, **values: Any) -> Row[Any] | None:
        """Change ticket columns; returns the updated row (None if there is no such ticket)."""
        result = await self.session.execute(
            update(orm.tickets)
            .where(T.tenant_id == self.tenant, T.id == ticket_id)
            .values(**values)
            .returning(*orm.tickets.c)
        )
        return result.first()

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
