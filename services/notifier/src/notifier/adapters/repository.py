"""Queries of shipments, orders, episodes, learned gaps, the customer read model and open cases."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters import orm
from notifier.adapters.erasure import ErasureQueries
from notifier.adapters.sql import is_postgres, memo, upsert, write_later
from notifier.domain.delays import GapStats
from notifier.domain.episodes import Episode
from notifier.domain.policy import Customer
from notifier.domain.shipments import Shipment


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
        row = {"tenant_id": self.tenant, **keys, **(on_insert or {}), **values}
        stmt = upsert(self.session, table, keys=["tenant_id", *keys], row=row, update=values)
        await self.session.execute(stmt)

    # orders and shipments -------------------------------------------------------
    async def put_order(self, order_id: str, **values: Any) -> None:
        """Record an order's contact data and promise."""
        await self._put(orm.orders, {"order_id": order_id}, values)

    async def order(self, order_id: str) -> Row[Any] | None:
        """An order, if known."""
        c = orm.orders.c
        return await self._one(
            select(orm.orders).where(c.tenant_id == self.tenant, c.order_id == order_id)
        )

    async def shipment(self, shipment_id: str) -> Shipment | None:
        """A shipment with its order's promise, if known (this transaction's writes included)."""
        written = memo(self.session).get(("ship", self.tenant, shipment_id))
        if written is not None:
            return written
        s, o = orm.shipments.c, orm.orders.c
        q = (
            select(orm.shipments, o.promised_to)
            .outerjoin(orm.orders, (o.tenant_id == s.tenant_id) & (o.order_id == s.order_id))
            .where(s.tenant_id == self.tenant, s.shipment_id == shipment_id)
        )
        row = await self._one(q)
        if row is None:
            return None
        return Shipment(
            row.shipment_id,
            row.carrier,
            order_id=row.order_id,
            status=row.status,
            last_scan_at=row.last_scan_at,
            estimate_to=row.estimate_to,
            promised_to=row.promised_to,
            dispatch_by=row.dispatch_by,
            dispatched=row.dispatched,
        )

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
        """The latest delay episode of a shipment (number 0: none yet)."""
        c = orm.episodes.c
        q = (
            select(orm.episodes)
            .where(c.tenant_id == self.tenant, c.shipment_id == shipment_id)
            .order_by(c.number.desc())
            .limit(1)
        )
        row = await self._one(q)
        if row is None:
            return Episode()
        return Episode(row.number, row.open, row.reason, row.alerts, row.alerted_estimate)

    async def put_episode(self, shipment_id: str, ep: Episode, *, now: datetime) -> None:
        """Save an episode (opening it when new, stamping the close)."""
        values: dict[str, Any] = {
            "open": ep.open,
            "reason": ep.reason or "",
            "alerts": ep.alerts,
            "alerted_estimate": ep.alerted_estimate,
            "closed_at": None if ep.open else now,
        }
        keys = {"shipment_id": shipment_id, "number": ep.number}
        await self._put(orm.episodes, keys, values, on_insert={"opened_at": now})

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
    async def customer(self, customer_id: str) -> Customer | None:
        """A customer with their handles, if known."""
        c, h = orm.customers.c, orm.handles.c
        row = await self._one(
            select(orm.customers).where(c.tenant_id == self.tenant, c.customer_id == customer_id)
        )
        if row is None:
            return None
        rows = await self.session.execute(
            select(h.kind, h.value).where(h.tenant_id == self.tenant, h.customer_id == customer_id)
        )
        return Customer(
            customer_id,
            language=row.language,
            timezone=row.timezone,
            preferred_channel=row.preferred_channel,
            handles={r.kind: r.value for r in rows},
            opted_out=frozenset(row.opted_out or ()),
        )

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
        h = orm.handles.c
        row = await self._one(
            select(h.customer_id).where(
                h.tenant_id == self.tenant, h.kind == kind, h.value == value
            )
        )
        return row.customer_id if row else None

    async def move_handles(self, from_id: str, to_id: str) -> None:
        """Give one customer's handles to another (a merge)."""
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
        m = orm.merges.c
        ids, frontier = {customer_id}, {customer_id}
        while frontier:
            q = select(m.survivor_id, m.merged_id).where(
                m.tenant_id == self.tenant,
                m.undone.is_(False),
                or_(m.survivor_id.in_(frontier), m.merged_id.in_(frontier)),
            )
            found = {i for r in await self.session.execute(q) for i in r} - ids
            ids |= found
            frontier = found
        return sorted(ids)

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
        c = orm.cases.c
        about: list[Any] = []
        if order_id:
            about.append(c.order_id == order_id)
        if customer_id:
            about.append(and_(c.customer_id == customer_id, c.order_id.is_(None)))
        if not about:
            return None
        row = await self._one(
            select(c.ticket_id)
            .where(c.tenant_id == self.tenant, c.open, or_(*about))
            .order_by(c.order_id.is_(None))  # a case about this very order first
            .limit(1)
        )
        return row.ticket_id if row else None


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
