"""Queries of shipments, orders, episodes, learned gaps, the customer read model and open cases."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, Table, and_, delete, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters import orm
from notifier.adapters.erasure import ErasureQueries
from notifier.adapters.sql import is_postgres, memo, upsert, write_later
from notifier.domain.delays import GapStats
from notifier.domain.episodes import Episode
from notifier.domain.policy import Customer
from notifier.domain.shipments import Shipment

SHIP, ORDER = orm.shipments.c, orm.orders.c


@dataclass(frozen=True)
class _Order:
    """An order row as `Repository.order` returns it (read, preloaded or written)."""

    tenant_id: str
    order_id: str
    customer_email: str | None = None
    customer_phone: str | None = None
    language: str | None = None
    timezone: str | None = None
    promised_to: date | None = None
    contacts_erased: bool = False

    @classmethod
    def of(cls, row: Any) -> _Order:
        return cls(
            row.tenant_id, row.order_id, row.customer_email, row.customer_phone, row.language,
            row.timezone, row.promised_to, bool(row.contacts_erased),
        )  # fmt: skip


def _shipments_with_orders(tenant: str) -> Select[Any]:
    """Shipments of a tenant with their order's promise."""
    o, s = ORDER, SHIP
    return (
        select(orm.shipments, o.promised_to)
        .outerjoin(orm.orders, (o.tenant_id == s.tenant_id) & (o.order_id == s.order_id))
        .where(s.tenant_id == tenant)
    )


def _shipment(row: Any, promised_to: date | None) -> Shipment:
    return Shipment(
        row.shipment_id,
        row.carrier,
        order_id=row.order_id,
        status=row.status,
        last_scan_at=row.last_scan_at,
        estimate_to=row.estimate_to,
        promised_to=promised_to,
        dispatch_by=row.dispatch_by,
        dispatched=row.dispatched,
    )


PEOPLE = (orm.customers, orm.handles, orm.merges, orm.cases)


def _customer(row: Any, handles: dict[str, str]) -> Customer:
    return Customer(
        row.customer_id,
        language=row.language,
        timezone=row.timezone,
        preferred_channel=row.preferred_channel,
        handles=handles,
        opted_out=frozenset(row.opted_out or ()),
    )


def _contacts(order: Any) -> dict[str, str | None]:
    """An order's contact handles by kind (how `customers.for_order` looks its customer up)."""
    return {"email": order.customer_email, "phone": order.customer_phone}


def _component(start: str, edges: Iterable[tuple[str, str]]) -> set[str]:
    """The ids connected to `start` by these merge edges (either direction)."""
    ids, frontier = {start}, {start}
    edges = list(edges)
    while frontier:
        found = {i for e in edges if frontier & set(e) for i in e} - ids
        ids |= found
        frontier = found
    return ids


def _first_case(
    cases: Sequence[tuple[str, str | None, str]], order_id: str | None, customer_id: str | None
) -> str | None:
    """The open case about this order, else one of the customer about no order (lowest id)."""
    about = [t for t, o, _ in cases if order_id and o == order_id]
    mine = [t for t, o, c in cases if customer_id and o is None and c == customer_id]
    return min(about or mine, default=None)


def _episode(row: Any) -> Episode:
    return Episode(row.number, row.open, row.reason, row.alerts, row.alerted_estimate)


class Repository(ErasureQueries):
    """Rows of one tenant, in the caller's transaction (other tenants' rows are invisible)."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant = tenant_id

    async def _one(self, q: Any) -> Row[Any] | None:
        return (await self.session.execute(q)).first()

    async def _put(
        self,
        table: Table,
        keys: dict[str, Any],
        values: dict[str, Any],
        *,
        on_insert: dict[str, Any] | None = None,
    ) -> None:
        """Insert or update the row with these keys in one statement (`on_insert`: new rows only)."""
        if table in PEOPLE:
            self._people_changed()
        row = {"tenant_id": self.tenant, **keys, **(on_insert or {}), **values}
        stmt = upsert(self.session, table, keys=["tenant_id", *keys], row=row, update=values)
        await self.session.execute(stmt)

    # orders and shipments -------------------------------------------------------
    async def put_order(self, order_id: str, **values: Any) -> None:
        """Record an order's contact data and promise (written at commit, one statement for a
        whole batch; `values` names every column, so the last write wins like one upsert each)."""
        row = {"tenant_id": self.tenant, "order_id": order_id, **values}
        memo(self.session)[("order", self.tenant, order_id)] = _Order(**row)
        write_later(self.session, orm.orders, keys=("tenant_id", "order_id"), row=row)

    async def order(self, order_id: str) -> Any | None:
        """An order, if known (this transaction's writes and preloaded rows first)."""
        key = ("order", self.tenant, order_id)
        known = memo(self.session)
        if key in known:
            return known[key]
        c = orm.orders.c
        return await self._one(
            select(orm.orders).where(c.tenant_id == self.tenant, c.order_id == order_id)
        )

    async def shipment(self, shipment_id: str) -> Shipment | None:
        """A shipment with its order's promise, if known (this transaction's writes and
        preloaded rows included)."""
        key, known = ("ship", self.tenant, shipment_id), memo(self.session)
        if key in known:
            ship = known[key]
        else:
            row = await self._one(
                _shipments_with_orders(self.tenant).where(SHIP.shipment_id == shipment_id)
            )
            ship = _shipment(row, row.promised_to) if row else None
        if ship is None:
            return None
        # the promise is the order's: one written in this transaction may be newer than the read
        order = known.get(("order", self.tenant, ship.order_id))
        if order is not None and order.promised_to != ship.promised_to:
            ship = replace(ship, promised_to=order.promised_to)
        return ship

    async def put_shipment(self, s: Shipment, *, tracking_number: str) -> None:
        """Save a shipment's state (written at commit, one statement for a whole batch)."""
        memo(self.session)[("ship", self.tenant, s.shipment_id)] = s
        row = {
            "tenant_id": self.tenant,
            "shipment_id": s.shipment_id,
            "order_id": s.order_id,
            "carrier": s.carrier,
            "tracking_number": tracking_number,
            "status": s.status,
            "last_scan_at": s.last_scan_at,
            "estimate_to": s.estimate_to,
            "dispatch_by": s.dispatch_by,
            "dispatched": s.dispatched,
        }
        write_later(self.session, orm.shipments, keys=("tenant_id", "shipment_id"), row=row)

    async def preload(self, shipment_ids: Iterable[str], order_ids: Iterable[str] = ()) -> None:
        """Read these shipments, their orders (and these orders) and their episodes, three
        statements for a whole batch, so the events of the batch find them here instead of
        reading one each. Only what this transaction has not read or written yet is read;
        absence is remembered. Each is a plain `IN` on one table's key: a join planned on a new
        table's missing statistics degenerates into a nested loop over every row of the tenant."""
        known = memo(self.session)
        ids = sorted({i for i in shipment_ids if ("ship", self.tenant, i) not in known})
        s, o, e = orm.shipments.c, orm.orders.c, orm.episodes.c
        ships: Sequence[Any] = ()
        if ids:
            q = select(orm.shipments).where(s.tenant_id == self.tenant, s.shipment_id.in_(ids))
            ships = (await self.session.execute(q)).all()
        wanted = sorted(
            {
                i
                for i in (*(r.order_id for r in ships), *order_ids)
                if i and ("order", self.tenant, i) not in known
            }
        )
        if wanted:
            q = select(orm.orders).where(o.tenant_id == self.tenant, o.order_id.in_(wanted))
            known |= {("order", self.tenant, i): None for i in wanted}
            for row in await self.session.execute(q):
                known[("order", self.tenant, row.order_id)] = _Order.of(row)
        for i in ids:
            known[("ship", self.tenant, i)] = None
        for row in ships:
            order = known.get(("order", self.tenant, row.order_id))
            promised = order.promised_to if order is not None else None
            known[("ship", self.tenant, row.shipment_id)] = _shipment(row, promised)
        if not ids:
            return
        episodes = {i: Episode() for i in ids}
        q = select(orm.episodes).where(e.tenant_id == self.tenant, e.shipment_id.in_(ids))
        for row in await self.session.execute(q):
            if row.number > episodes[row.shipment_id].number:
                episodes[row.shipment_id] = _episode(row)
        for i, ep in episodes.items():  # an episode written in this transaction stays
            known.setdefault(("episode", self.tenant, i), ep)

    async def tracking_number(self, shipment_id: str) -> str:
        """The tracking number of a shipment ('' when unknown; read in the worker, after commit)."""
        c = orm.shipments.c
        row = await self._one(
            select(c.tracking_number).where(
                c.tenant_id == self.tenant, c.shipment_id == shipment_id
            )
        )
        return row.tracking_number if row else ""

    # episodes and learned gaps --------------------------------------------------
    async def episode(self, shipment_id: str) -> Episode:
        """The latest delay episode of a shipment (number 0: none yet; read once per transaction)."""
        key, known = ("episode", self.tenant, shipment_id), memo(self.session)
        if key in known:
            return known[key]
        c = orm.episodes.c
        q = (
            select(orm.episodes)
            .where(c.tenant_id == self.tenant, c.shipment_id == shipment_id)
            .order_by(c.number.desc())
            .limit(1)
        )
        row = await self._one(q)
        known[key] = _episode(row) if row else Episode()
        return known[key]

    async def put_episode(self, shipment_id: str, ep: Episode, *, now: datetime) -> None:
        """Save an episode (opening it when new, stamping the close); it is now the latest
        (written at commit, one statement for a whole batch; `opened_at` only when inserted)."""
        memo(self.session)[("episode", self.tenant, shipment_id)] = ep
        row: dict[str, Any] = {
            "tenant_id": self.tenant,
            "shipment_id": shipment_id,
            "number": ep.number,
            "open": ep.open,
            "reason": ep.reason or "",
            "alerts": ep.alerts,
            "alerted_estimate": ep.alerted_estimate,
            "opened_at": now,
            "closed_at": None if ep.open else now,
        }
        keys = ("tenant_id", "shipment_id", "number")
        write_later(self.session, orm.episodes, keys=keys, row=row, keep=("opened_at",))

    async def gaps(self, carrier: str, lane: str, *, lock: bool = False) -> GapStats:
        """Learned scan gaps of a carrier in a lane (read once per transaction unless locking)."""
        key = ("gaps", self.tenant, carrier, lane)
        known = memo(self.session)
        if key in known and not lock:
            return known[key]
        c = orm.gap_stats.c
        q = select(c.counts).where(c.tenant_id == self.tenant, c.carrier == carrier, c.lane == lane)
        row = await self._one(q.with_for_update() if lock and is_postgres(self.session) else q)
        known[key] = GapStats(tuple(row.counts)) if row and row.counts else GapStats()
        return known[key]

    async def add_gap(self, carrier: str, lane: str, gap: timedelta) -> None:
        """Record one observed scan gap (an insert at commit: no row shared by transactions)."""
        row: dict[str, Any] = {"tenant_id": self.tenant, "carrier": carrier, "lane": lane}
        row["gap_s"] = int(gap.total_seconds())
        write_later(self.session, orm.gap_samples, keys=(), row=row)

    # customers read model -------------------------------------------------------
    def _people(self) -> dict[Any, Any]:
        """The customer read model and open cases as preloaded for a batch's alerts (dropped by
        every write to them in this transaction, so a read never sees a stale preload)."""
        found: dict[Any, Any] = memo(self.session).setdefault(("people", self.tenant), {})
        return found

    def _people_changed(self) -> None:
        memo(self.session).pop(("people", self.tenant), None)

    async def customer(self, customer_id: str) -> Customer | None:
        """A customer with their handles, if known."""
        preloaded = self._people()
        if ("customer", customer_id) in preloaded:
            return preloaded[("customer", customer_id)]
        c, h = orm.customers.c, orm.handles.c
        row = await self._one(
            select(orm.customers).where(c.tenant_id == self.tenant, c.customer_id == customer_id)
        )
        if row is None:
            return None
        rows = await self.session.execute(
            select(h.kind, h.value).where(h.tenant_id == self.tenant, h.customer_id == customer_id)
        )
        return _customer(row, {r.kind: r.value for r in rows})

    async def put_customer(self, customer_id: str, **values: Any) -> None:
        """Create or change a customer of the read model."""
        keys = {"customer_id": customer_id}
        await self._put(orm.customers, keys, values, on_insert={"opted_out": []})

    async def link(self, kind: str, value: str, customer_id: str) -> None:
        """A handle now belongs to a customer."""
        await self.put_customer(customer_id)
        await self._put(orm.handles, {"kind": kind, "value": value}, {"customer_id": customer_id})

    async def owner(self, kind: str, value: str) -> str | None:
        """The customer a handle belongs to."""
        preloaded = self._people()
        if ("owner", kind, value) in preloaded:
            return preloaded[("owner", kind, value)]
        h = orm.handles.c
        row = await self._one(
            select(h.customer_id).where(
                h.tenant_id == self.tenant, h.kind == kind, h.value == value
            )
        )
        return row.customer_id if row else None

    async def move_handles(self, from_id: str, to_id: str) -> None:
        """Give one customer's handles to another (a merge)."""
        self._people_changed()
        h = orm.handles.c
        await self.session.execute(
            update(orm.handles)
            .where(h.tenant_id == self.tenant, h.customer_id == from_id)
            .values(customer_id=to_id)
        )

    async def handles_of(self, customer_id: str) -> list[tuple[str, str]]:
        """Every (kind, value) handle of a customer."""
        h = orm.handles.c
        q = select(h.kind, h.value).where(h.tenant_id == self.tenant, h.customer_id == customer_id)
        return [(r.kind, r.value) for r in await self.session.execute(q.order_by(h.kind, h.value))]

    async def move_cases(
        self, from_id: str, to_id: str, *, ticket_ids: Sequence[str] | None = None
    ) -> list[str]:
        """Give one customer's cases (or just these) to another; the ids moved."""
        self._people_changed()
        c = orm.cases.c
        where = [c.tenant_id == self.tenant, c.customer_id == from_id]
        if ticket_ids is not None:
            where.append(c.ticket_id.in_(list(ticket_ids)))
        moved = await self.session.execute(
            update(orm.cases).where(*where).values(customer_id=to_id).returning(c.ticket_id)
        )
        return sorted(moved.scalars())

    async def merge(self, merge_id: str) -> Row[Any] | None:
        """A merge the read model applied, if any."""
        m = orm.merges.c
        return await self._one(
            select(orm.merges).where(m.tenant_id == self.tenant, m.merge_id == merge_id)
        )

    async def same_person(self, customer_id: str) -> list[str]:
        """This customer and every id merged with it (merges not undone, followed both ways)."""
        preloaded = self._people()
        if ("person", customer_id) in preloaded:
            return list(preloaded[("person", customer_id)])
        return sorted(_component(customer_id, await self._merge_edges({customer_id})))

    async def _merge_edges(self, start: set[str]) -> list[tuple[str, str]]:
        """The merges (not undone) reachable from these ids, one statement per hop."""
        m = orm.merges.c
        ids, frontier, edges = set(start), set(start), set()
        while frontier:
            q = select(m.survivor_id, m.merged_id).where(
                m.tenant_id == self.tenant,
                m.undone.is_(False),
                or_(m.survivor_id.in_(frontier), m.merged_id.in_(frontier)),
            )
            found = {(r.survivor_id, r.merged_id) for r in await self.session.execute(q)}
            edges |= found
            frontier = {i for e in found for i in e} - ids
            ids |= frontier
        return sorted(edges)

    async def preload_people(self, orders: Iterable[Any]) -> None:
        """For a batch's alerts: the owners of these orders' contacts, those customers with their
        handles, their open cases (and those of the orders) and who they were merged with, a
        few statements for the whole batch; `customer`, `owner`, `open_case` and `same_person`
        then answer from here until the read model changes."""
        orders = [o for o in orders if o is not None]
        pairs: list[tuple[str, str]] = sorted(
            {(k, v) for o in orders for k, v in _contacts(o).items() if v}
        )
        known = self._people()
        h, c = orm.handles.c, orm.customers.c
        owners: dict[tuple[str, str], str | None] = dict.fromkeys(pairs)
        if pairs:
            q = select(h.kind, h.value, h.customer_id).where(
                h.tenant_id == self.tenant, tuple_(h.kind, h.value).in_(pairs)
            )
            owners |= {(r.kind, r.value): r.customer_id for r in await self.session.execute(q)}
        ids = sorted({i for i in owners.values() if i is not None})
        customers: dict[str, Customer | None] = dict.fromkeys(ids)
        if ids:
            q = select(orm.customers).where(c.tenant_id == self.tenant, c.customer_id.in_(ids))
            rows = (await self.session.execute(q)).all()
            q = select(h.customer_id, h.kind, h.value).where(
                h.tenant_id == self.tenant, h.customer_id.in_(ids)
            )
            handles: dict[str, dict[str, str]] = defaultdict(dict)
            for r in await self.session.execute(q):
                handles[r.customer_id][r.kind] = r.value
            customers |= {r.customer_id: _customer(r, handles[r.customer_id]) for r in rows}
        # the ids alerts are decided for: a known customer, else the order's own
        people = {i for i in ids if customers[i] is not None}
        people |= {f"order:{o.order_id}" for o in orders}
        edges = await self._merge_edges(people)
        cases = await self._open_cases([o.order_id for o in orders], sorted(people))
        known |= {("owner", *pair): who for pair, who in owners.items()}
        known |= {("customer", i): who for i, who in customers.items()}
        known |= {("person", i): tuple(sorted(_component(i, edges))) for i in people}
        for o in orders:
            for i in people:
                known[("case", o.order_id, i)] = _first_case(cases, o.order_id, i)
            known[("case", o.order_id, None)] = _first_case(cases, o.order_id, None)

    async def put_merge(self, merge_id: str, **values: Any) -> None:
        """Record a merge (or its undo)."""
        await self._put(orm.merges, {"merge_id": merge_id}, values)

    # open cases -----------------------------------------------------------------
    async def put_case(self, ticket_id: str, **values: Any) -> None:
        """Record a case and whether it is open."""
        await self._put(orm.cases, {"ticket_id": ticket_id}, values)

    async def open_case(self, order_id: str | None, customer_id: str | None = None) -> str | None:
        """The id of an open case about this order, else (routing's cases name no order) an
        open case of the order's customer that names no order, if any."""
        preloaded = self._people()
        if ("case", order_id, customer_id) in preloaded:
            return preloaded[("case", order_id, customer_id)]
        cases = await self._open_cases(
            [order_id] if order_id else [], [customer_id] if customer_id else []
        )
        return _first_case(cases, order_id, customer_id)

    async def _open_cases(
        self, order_ids: Sequence[str | None], customer_ids: Sequence[str]
    ) -> list[tuple[str, str | None, str]]:
        """Open cases (ticket, order, customer) about these orders, or of these customers and
        about no order."""
        c = orm.cases.c
        about: list[Any] = []
        if orders := [o for o in order_ids if o]:
            about.append(c.order_id.in_(orders))
        if customer_ids:
            about.append(and_(c.customer_id.in_(list(customer_ids)), c.order_id.is_(None)))
        if not about:
            return []
        q = select(c.ticket_id, c.order_id, c.customer_id).where(
            c.tenant_id == self.tenant, c.open, or_(*about)
        )
        return [(r.ticket_id, r.order_id, r.customer_id) for r in await self.session.execute(q)]


async def fold_gaps(session: AsyncSession, *, limit: int = 5000) -> int:
    """Fold appended gap samples into the learned histograms (one transaction; SKIP LOCKED, keys
    locked in sorted order so concurrent workers never deadlock); returns how many were folded."""
    s = orm.gap_samples.c
    q = select(orm.gap_samples).order_by(s.id).limit(limit)
    rows = (
        await session.execute(q.with_for_update(skip_locked=True) if is_postgres(session) else q)
    ).all()
    if not rows:
        return 0
    by_key: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for r in rows:
        by_key[(r.tenant_id, r.carrier, r.lane)].append(r.gap_s)
    for (tenant, carrier, lane), gaps in sorted(by_key.items()):
        repo = Repository(session, tenant)
        keys = {"carrier": carrier, "lane": lane}
        await repo._put(orm.gap_stats, keys, {}, on_insert={"counts": []})
        stats = await repo.gaps(carrier, lane, lock=True)
        for gap in gaps:
            stats = stats.add(timedelta(seconds=gap))
        await repo._put(orm.gap_stats, keys, {"counts": list(stats.counts)})
    await session.execute(delete(orm.gap_samples).where(s.id.in_([r.id for r in rows])))
    return len(rows)
