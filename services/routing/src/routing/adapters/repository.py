"""Every query of routing, scoped to one tenant (another tenant's rows are invisible)."""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, and_, bindparam, case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from routing.adapters import orm, writes
from routing.adapters.driver import Prepared, fetch_parts, fetch_sql
from routing.adapters.eligibility import Want, statements
from routing.adapters.erasure import ErasureQueries
from routing.adapters.history import HistoryQueries
from routing.adapters.writes import TenantQueries

ACTIVE = ("new", "open", "pending")
_RANK = case({"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=orm.tickets.c.priority, else_=9)
T = orm.tickets.c
_Case = namedtuple("_Case", "id customer_id status updated_at resolved_at")


# keys in the session's info: this transaction changed the configuration; its config memo
_CHANGED, CONFIG_MEMO = "routing.config_changed", "routing.config"
_HOLDS = "routing.holds_agents"  # this transaction reserved an agent (holds its row lock)
_VERSION_READ = "routing.config_version_read"  # tenant → version, read with a batch's facts
_POOLS = "routing.pools"  # (transaction, queue → pool count) of a consumer batch's decisions

_TICKETS = ("tickets",)  # the waiting rows a statement on tickets alone needs written first
# Built once (compiled once per set of columns given), not `.values(**row)` per call.
_ADD_TICKET = insert(orm.tickets).returning(*orm.tickets.c)
# One ticket by id: built once (building `select(...).where(...)` per call cost more client CPU
# than running it); the update's SET clause comes from the column names given to `execute`.
_BY_ID = (T.tenant_id == bindparam("b_tenant"), T.id == bindparam("b_ticket"))
_TICKET = select(orm.tickets).where(*_BY_ID)
_TICKET_LOCKED = _TICKET.with_for_update()
_UPDATE_TICKET = update(orm.tickets).where(*_BY_ID).returning(*orm.tickets.c)
# the same read on the driver connection, used in consumer batches (see `TenantQueries._one`)
_TICKET_ON_DRIVER = {False: Prepared.of(_TICKET), True: Prepared.of(_TICKET_LOCKED)}


@lru_cache(maxsize=64)
def _update_on_driver(columns: tuple[str, ...]) -> Prepared:
    """`_UPDATE_TICKET` setting `columns` (bound by their names, as the session binds them),
    for the driver connection."""
    values = {c: bindparam(c, type_=orm.tickets.c[c].type) for c in columns}
    return Prepared.of(_UPDATE_TICKET.values(values), processed=True)


_CLAIM = (
    update(orm.tickets)
    .where(*_BY_ID, T.agent_id.is_(None), T.status.in_(ACTIVE))
    .values(
        agent_id=bindparam("b_agent"),
        last_agent_id=bindparam("b_agent"),
        updated_at=bindparam("b_now"),
    )
)


# A consumer batch's facts about its messages in one round trip (PostgreSQL, driver connection):
# the customers' active and resolved cases (the columns joining needs), each customer's last
# agent, which message ids some case already holds, and the configuration version.
_FACTS = """
SELECT 'case' AS kind, customer_id, id, status, updated_at, resolved_at, NULL::integer AS version
  FROM tickets
 WHERE tenant_id = $1 AND customer_id = ANY($2::varchar[])
   AND status IN ('new', 'open', 'pending', 'resolved')
UNION ALL
SELECT 'last', customer_id, last_agent_id, NULL, NULL, NULL, NULL
  FROM (SELECT DISTINCT ON (customer_id) customer_id, last_agent_id
          FROM tickets
         WHERE tenant_id = $1 AND customer_id = ANY($2::varchar[]) AND last_agent_id IS NOT NULL
         ORDER BY customer_id, updated_at DESC) AS newest
UNION ALL
SELECT 'known', NULL, message_id, NULL, NULL, NULL, NULL
  FROM ticket_messages WHERE tenant_id = $1 AND message_id = ANY($3::varchar[])
UNION ALL
SELECT 'version', NULL, NULL, NULL, NULL, NULL, version FROM config_versions WHERE tenant_id = $1
"""


# The reservations of several decisions made together (`RoutingRepository.reserve_together`):
# all or none. Each agent is locked (skipping those another transaction holds) only if every
# decision that chose them still holds on its newest version — online, room for all the units
# chosen, serving the queue, speaking the language, every skill level — then all are updated
# if all were locked. Returns the agents locked and whether they were taken.
_RESERVE_TOGETHER = """
WITH d AS (
  SELECT * FROM unnest($2::varchar[], $3::integer[], $4::varchar[], $5::varchar[], $6::jsonb[],
                       $7::timestamptz[]) AS d(id, units, language, queue, needs, at)
), per AS (
  SELECT id, sum(units)::integer AS units, max(at) AS at FROM d GROUP BY id
), ok AS (
  SELECT a.id, per.units, per.at FROM agents a JOIN per ON per.id = a.id
   WHERE a.tenant_id = $1 AND a.presence = 'online' AND a.load + per.units <= a.capacity
     AND NOT EXISTS (
       SELECT 1 FROM d WHERE d.id = a.id AND NOT (
         (d.queue IS NULL OR a.queue_keys = '' OR a.queue_keys LIKE '%|' || d.queue || '|%')
         AND (d.language IS NULL OR coalesce((a.languages ->> d.language)::integer, 0) > 0)
         AND NOT EXISTS (
           SELECT 1 FROM jsonb_each_text(d.needs) AS n(skill, level)
            WHERE coalesce((a.skills ->> n.skill)::integer, 0) < n.level::integer)))
   FOR UPDATE OF a SKIP LOCKED
), took AS (
  UPDATE agents a SET load = a.load + ok.units, last_assigned_at = ok.at, idle_since = NULL
    FROM ok
   WHERE a.tenant_id = $1 AND a.id = ok.id
     AND (SELECT count(*) FROM ok) = (SELECT count(*) FROM per)
  RETURNING a.id
)
SELECT ok.id, (SELECT count(*) FROM took) > 0 AS took FROM ok
"""


@dataclass(frozen=True)
class Reservation:
    """One decision's share of `reserve_together`: the agent, the units, what the case needs."""

    agent_id: str
    units: int
    language: str | None
    queue_id: str | None
    needs: str  # JSON object skill → level
    at: datetime


@dataclass(frozen=True)
class Facts:
    """What `RoutingRepository.facts` read: cases (rows with id, customer_id, status,
    updated_at, resolved_at), last agents by customer, the message ids already held."""

    cases: list[Any]
    last_agents: dict[str, str]
    known: set[str]


class RoutingRepository(HistoryQueries, ErasureQueries, TenantQueries):
    """Queues, agents, tickets, timers and rules of one tenant, in the caller's transaction."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant = tenant_id

    @property
    def postgres(self) -> bool:
        """Whether row locks with SKIP LOCKED are available."""
        return self.session.get_bind().dialect.name == "postgresql"

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
        await self.bump_config()
        q = orm.queues
        if exists:
            await self.execute(
                update(q).where(q.c.tenant_id == self.tenant, q.c.id == queue_id).values(**values)
            )
        else:
            await self.execute(insert(q).values(id=queue_id, tenant_id=self.tenant, **values))

    async def delete_queue(self, queue_id: str) -> None:
        """Remove a queue."""
        await self.bump_config()
        q = orm.queues
        await self.execute(delete(q).where(q.c.tenant_id == self.tenant, q.c.id == queue_id))

    # configuration versions ---------------------------------------------------
    async def config_version(self) -> int:
        """The version of the tenant's queues and rules (0 before the first change); the one
        read with a batch's facts (`facts`) if that was this transaction's first read of it."""
        read: dict[str, int] = self.session.info.get(_VERSION_READ, {})
        if self.tenant in read:
            return read.pop(self.tenant)
        v = orm.config_versions.c
        found = await self._one(select(v.version).where(v.tenant_id == self.tenant))
        return int(found.version) if found else 0

    @property
    def config_changed(self) -> bool:
        """Whether this transaction changed the tenant's queues or rules."""
        return bool(self.session.info.get(_CHANGED))

    async def bump_config(self) -> None:
        """Mark the tenant's queues/rules changed (every process re-reads them after commit)."""
        v = orm.config_versions
        insert_ = pg_insert if self.postgres else sqlite_insert
        stmt = insert_(v).values(tenant_id=self.tenant, version=1)
        await self.execute(
            stmt.on_conflict_do_update(
                index_elements=["tenant_id"], set_={"version": v.c.version + 1}
            )
        )
        self.session.info[_CHANGED] = True
        self.session.info.pop(CONFIG_MEMO, None)
        self.session.info.pop(_VERSION_READ, None)

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

    async def candidates(self, want: Want) -> Sequence[Row[Any]]:
        """The best eligible agents (online, room, language, skills, serving the queue; the
        customer's last agent first if among them, then by the policy); each row also carries
        `pool`, how many online agents serve the queue (the decision's candidates)."""
        found = statements(want.shape(), postgres=self.postgres).candidates
        # agents only: the batch's waiting rows need not be written first (nor below)
        return (await self.session.execute(found, want.params(self.tenant))).all()

    async def reserve_best(self, want: Want, now: datetime) -> str | None:
        """Take the capacity of the best eligible agent that no other transaction is changing
        (skipped, never waited for: a consumer batch holds the agents it reserved until it
        commits), in one statement; None if every eligible agent is full or held."""
        found = statements(want.shape(), postgres=self.postgres).reserve
        result = await self.session.execute(found, want.params(self.tenant, now=now))
        got: str | None = result.scalar_one_or_none()
        self._holding(got is not None)
        return got

    async def candidates_reserving(
        self, want: Want, now: datetime
    ) -> tuple[Sequence[Row[Any]], str | None]:
        """`candidates` and `reserve_best` together: one statement on PostgreSQL (on the driver
        connection once the transaction has begun, see `driver.Prepared`); elsewhere the
        reservation only when there is a candidate."""
        found = statements(want.shape(), postgres=self.postgres)
        if found.prepared is None or found.uncounted is None:  # not PostgreSQL: no `decide`
            candidates = await self.candidates(want)
            return candidates, (await self.reserve_best(want, now) if candidates else None)
        params = want.params(self.tenant, now=now)
        pools = self._pools()
        key = (self.tenant, want.queue_id)
        counted = None if pools is None else pools.get(key)
        prepared = found.prepared if counted is None else found.uncounted
        rows: Sequence[Any] | None = await prepared.fetch(self.session, params)
        if rows is None:  # the first statement of the transaction: the session begins it
            rows, counted = (await self.session.execute(found.decide, params)).all(), None
        got: str | None = rows[0].got if rows else None
        self._holding(got is not None)
        rows = [r for r in rows if r.id is not None]
        if counted is not None:
            rows = [r._replace(pool=counted) for r in rows]
        elif pools is not None and rows:
            pools[key] = rows[0].pool
        return rows, got

    async def shortlists(
        self, wants: Sequence[Want], k: int
    ) -> list[tuple[list[Any], int | None]] | None:
        """The best `k` eligible agents of each demand (records of `_SHORTLIST` columns) and
        its pool (online agents serving its queue, counted once per queue and batch as in
        `candidates_reserving`; None if no agent was read), all in one statement and so one
        snapshot, no lock taken. None on SQLite or before the transaction has begun on its
        connection."""
        pools = self._pools()
        parts = []
        for want in wants:
            found = statements(want.shape(), postgres=self.postgres)
            if found.shortlist is None or found.shortlist_uncounted is None:
                return None
            counted = pools is not None and (self.tenant, want.queue_id) in pools
            prepared = found.shortlist_uncounted if counted else found.shortlist
            parts.append((prepared, want.params(self.tenant, k=k)))
        rows = await fetch_parts(self.session, parts)
        if rows is None:
            return None
        read = []
        for want, found_rows in zip(wants, rows, strict=True):
            key = (self.tenant, want.queue_id)
            pool = found_rows[0]["pool"] if found_rows else None
            if pools is not None:
                if key in pools:
                    pool = pools[key]
                elif pool is not None:
                    pools[key] = pool
            read.append((found_rows, pool))
        return read

    async def reserve_together(self, reservations: Sequence[Reservation]) -> tuple[set[str], bool]:
        """Take the capacity of several decisions at once, all or none (see
        `_RESERVE_TOGETHER`): the agents this transaction could lock for them, and whether all
        were taken. Agents another transaction holds are skipped, never waited for."""
        args = [
            self.tenant,
            [r.agent_id for r in reservations],
            [r.units for r in reservations],
            [r.language for r in reservations],
            [r.queue_id for r in reservations],
            [r.needs for r in reservations],
            [r.at for r in reservations],
        ]
        rows = await fetch_sql(self.session, _RESERVE_TOGETHER, args)
        assert rows is not None  # only after `shortlists`, on the same transaction
        locked = {r["id"] for r in rows}
        self._holding(bool(locked))
        return locked, bool(rows) and bool(rows[0]["took"])

    def _pools(self) -> dict[tuple[str, str | None], int] | None:
        """Pool counts (online agents serving a queue) taken by this consumer batch's decisions,
        by tenant and queue: a batch's later decisions for a queue reuse the count instead of counting
        again (≈ 0.14 ms of PostgreSQL each). It is the `candidates_considered` of the events,
        a count from a few ms earlier; only in a batch of messages (`writes.pending`), which
        changes no agent's presence or queues. None outside one."""
        if writes.pending(self.session) is None:
            return None
        transaction = self.session.sync_session.get_transaction()
        memo = self.session.info.get(_POOLS)
        if memo is None or memo[0] is not transaction:
            memo = (transaction, {})
            self.session.info[_POOLS] = memo
        pools: dict[tuple[str, str | None], int] = memo[1]
        return pools

    async def put_agent(self, agent_id: str, values: dict[str, Any], *, exists: bool) -> None:
        """Insert or update an agent."""
        a = orm.agents
        if exists:
            await self.execute(
                update(a).where(a.c.tenant_id == self.tenant, a.c.id == agent_id).values(**values)
            )
        else:
            await self.execute(insert(a).values(id=agent_id, tenant_id=self.tenant, **values))

    async def delete_agent(self, agent_id: str) -> None:
        """Remove an agent."""
        a = orm.agents
        await self.execute(delete(a).where(a.c.tenant_id == self.tenant, a.c.id == agent_id))

    # claims -----------------------------------------------------------------
    async def reserve(self, agent_id: str, weight: int, now: datetime) -> bool:
        """Atomically take `weight` capacity units of an online agent; False if it would not fit."""
        a = orm.agents.c
        result = await self.execute(
            update(orm.agents)
            .where(
                a.tenant_id == self.tenant,
                a.id == agent_id,
                a.presence == "online",
                a.load + weight <= a.capacity,
            )
            .values(load=a.load + weight, last_assigned_at=now, idle_since=None)
        )
        self._holding(bool(result.rowcount))  # type: ignore[attr-defined]
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _holding(self, reserved: bool) -> None:
        if reserved:
            self.session.info[_HOLDS] = True

    @property
    def holds_agents(self) -> bool:
        """Whether this transaction reserved (and so row-locks) some agent."""
        return bool(self.session.info.get(_HOLDS))

    async def release(self, agent_id: str, weight: int, now: datetime) -> None:
        """Give capacity back; an agent whose load reaches zero becomes idle now."""
        a = orm.agents.c
        new_load = case((a.load - weight < 0, 0), else_=a.load - weight)
        await self.execute(
            update(orm.agents)
            .where(a.tenant_id == self.tenant, a.id == agent_id)
            .values(load=new_load, idle_since=case((new_load == 0, now), else_=a.idle_since))
        )

    async def claim(self, ticket_id: str, agent_id: str, now: datetime) -> bool:
        """Atomically make `agent_id` the owner of an unowned active ticket; False if taken."""
        params = {"b_tenant": self.tenant, "b_ticket": ticket_id, "b_agent": agent_id, "b_now": now}
        result = await self.execute(_CLAIM, params, tables=_TICKETS, ticket=ticket_id)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # tickets ----------------------------------------------------------------
    async def ticket(self, ticket_id: str, *, lock: bool = False) -> Row[Any] | None:
        """One ticket (locked FOR UPDATE when asked)."""
        q = _TICKET_LOCKED if lock else _TICKET
        params = {"b_tenant": self.tenant, "b_ticket": ticket_id}
        prepared = _TICKET_ON_DRIVER[lock]
        return await self._one(q, params, tables=_TICKETS, ticket=ticket_id, prepared=prepared)

    async def arrival(self, message_id: str, customer_id: str) -> tuple[bool, str | None]:
        """One round trip for a new message: is it already in a case; the customer's last agent."""
        m = orm.ticket_messages.c
        dup = (
            select(m.id).where(m.tenant_id == self.tenant, m.message_id == message_id).limit(1)
        ).exists()
        last = (
            select(T.last_agent_id)
            .where(
                T.tenant_id == self.tenant,
                T.customer_id == customer_id,
                T.last_agent_id.is_not(None),
            )
            .order_by(T.updated_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        row = (await self.execute(select(dup.label("dup"), last.label("last")))).one()
        return bool(row.dup), row.last

    async def known_messages(self, message_ids: Iterable[str]) -> set[str]:
        """Which of these inbound message ids are already in some case."""
        m = orm.ticket_messages.c
        q = select(m.message_id).where(
            m.tenant_id == self.tenant, m.message_id.in_(list(message_ids))
        )
        return set((await self.execute(q)).scalars())

    async def last_agents(self, customer_ids: Iterable[str]) -> dict[str, str]:
        """Each customer's most recent agent (customers who never had one are absent)."""
        newest = (
            func.row_number()
            .over(partition_by=T.customer_id, order_by=T.updated_at.desc())
            .label("n")
        )
        ranked = (
            select(T.customer_id, T.last_agent_id, newest)
            .where(
                T.tenant_id == self.tenant,
                T.customer_id.in_(list(customer_ids)),
                T.last_agent_id.is_not(None),
            )
            .subquery()
        )
        rows = await self._all(
            select(ranked.c.customer_id, ranked.c.last_agent_id).where(ranked.c.n == 1)
        )
        return {r.customer_id: r.last_agent_id for r in rows}

    async def facts(self, customer_ids: set[str], message_ids: list[str]) -> Facts | None:
        """`customer_cases`, `last_agents`, `known_messages` and the configuration version in
        one round trip (kept for `config_version`); None where that is not available (SQLite,
        or the transaction has not begun on its connection): the caller reads them one by one.
        The waiting rows of a batch are written first, as for those reads."""
        waiting = writes.pending(self.session)
        if waiting is not None:
            await waiting.write(self.session)
        args = [self.tenant, list(customer_ids), message_ids]
        rows = await fetch_sql(self.session, _FACTS, args)
        if rows is None:
            return None
        found = Facts([], {}, set())
        version = 0
        for row in rows:
            kind = row["kind"]
            if kind == "case":
                found.cases.append(_Case(row[2], row[1], row[3], row[4], row[5]))
            elif kind == "last":
                found.last_agents[row[1]] = row[2]
            elif kind == "known":
                found.known.add(row[2])
            else:
                version = int(row[6])
        self.session.info.setdefault(_VERSION_READ, {})[self.tenant] = version
        return found

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

    async def add_ticket(self, values: dict[str, Any]) -> Any:
        """Insert a ticket (a new id unless given; written with its batch when one is being
        applied); returns the row."""
        ticket_id = values.pop("id", None) or str(uuid.uuid4())
        row = {"id": ticket_id, "tenant_id": self.tenant, **values}
        queued = self._new_ticket(row)
        return queued if queued is not None else (await self.execute(_ADD_TICKET, row)).one()

    async def update_ticket(self, ticket_id: str, **values: Any) -> Row[Any] | None:
        """Change ticket columns; returns the updated row (None if there is no such ticket)."""
        params = {"b_tenant": self.tenant, "b_ticket": ticket_id, **values}
        prepared = _update_on_driver(tuple(values)) if writes.pending(self.session) else None
        return await self._one(
            _UPDATE_TICKET, params, tables=_TICKETS, ticket=ticket_id, prepared=prepared
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
