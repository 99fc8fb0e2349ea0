"""Every write-side query of crm, scoped to one tenant (another tenant's rows are invisible)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, delete, exists, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm.adapters import orm
from crm.adapters.bulk import BulkQueries
from crm.adapters.erasure import ErasureQueries
from crm.domain.handles import HandleKey
from crm.domain.model import ROW_KINDS, Customer, Merge, Status


class CustomerRepository(ErasureQueries, BulkQueries):
    """Customers and the rows they own, for one tenant, in the caller's transaction."""

    def __init__(
        self, session: AsyncSession, tenant_id: str, *, tombstone_secret: bytes | None = None
    ) -> None:
        self.session = session
        self.tenant = tenant_id
        self.tombstone_secret = tombstone_secret

    def _insert(self, table: Table) -> Any:
        dialect = self.session.get_bind().dialect.name
        return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)

    async def customer(self, customer_id: str, *, lock: bool = False) -> Row[Any] | None:
        """The customer row (locked FOR UPDATE when asked), whatever its status."""
        q = select(orm.customers).where(
            orm.customers.c.tenant_id == self.tenant, orm.customers.c.id == customer_id
        )
        if lock:
            q = q.with_for_update()
        return (await self.session.execute(q)).first()

    async def live(self, customer_id: str, *, lock: bool = False) -> Row[Any] | None:
        """The live customer an id resolves to (following merges), or None (unknown/erased)."""
        seen: set[str] = set()
        row = await self.customer(customer_id, lock=lock)
        while row is not None and row.status == Status.MERGED and row.id not in seen:
            seen.add(row.id)
            row = await self.customer(row.merged_into, lock=lock)
        return row if row is not None and row.status == Status.ACTIVE else None

    async def live_owner(self, handle: HandleKey) -> Row[Any] | None:
        """The customer row holding a handle, locked, in one round trip (the hot path)."""
        i, c = orm.identities.c, orm.customers.c
        q = (
            select(orm.customers)
            .join(orm.identities, i.customer_id == c.id)
            .where(
                i.tenant_id == self.tenant,
                i.kind == handle.kind,
                i.scope == handle.scope,
                i.value == handle.value,
            )
            .with_for_update(of=orm.customers)
        )
        row = (await self.session.execute(q)).first()
        if row is None or row.status == Status.ACTIVE:
            return row
        return await self.live(row.id, lock=True)  # merged meanwhile: follow to the survivor

    async def add_customer(self, now: datetime) -> str:
        """Insert a new active customer; returns its id."""
        cid = str(uuid.uuid4())
        await self.session.execute(
            insert(orm.customers).values(
                id=cid, tenant_id=self.tenant, status=Status.ACTIVE, created_at=now, updated_at=now
            )
        )
        return cid

    async def drop_customer(self, customer_id: str) -> None:
        """Delete a customer row that never got a handle (lost a creation race)."""
        await self.session.execute(delete(orm.customers).where(orm.customers.c.id == customer_id))

    async def handles_of(self, ids: tuple[int, ...]) -> list[HandleKey]:
        """The handles of identity rows."""
        i = orm.identities.c
        rows = await self.session.execute(select(i.kind, i.value, i.scope).where(i.id.in_(ids)))
        return [HandleKey(r.kind, r.value, r.scope) for r in rows]

    async def touch(self, customer_id: str, now: datetime) -> None:
        """Record that the card changed."""
        await self.session.execute(
            update(orm.customers).where(orm.customers.c.id == customer_id).values(updated_at=now)
        )

    async def owner_of(self, handle: HandleKey) -> str | None:
        """The customer id holding a handle's identity row (maybe merged away since)."""
        i = orm.identities.c
        q = select(i.customer_id).where(
            i.tenant_id == self.tenant,
            i.kind == handle.kind,
            i.scope == handle.scope,
            i.value == handle.value,
        )
        return (await self.session.execute(q)).scalar_one_or_none()

    async def add_identity(
        self, customer_id: str, handle: HandleKey, *, source: str, ref: str, now: datetime
    ) -> bool:
        """Give a customer a handle; False if another transaction took it first (savepoint)."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(orm.identities).values(
                        tenant_id=self.tenant,
                        customer_id=customer_id,
                        kind=handle.kind,
                        scope=handle.scope,
                        value=handle.value,
                        source=source,
                        source_ref=ref,
                        created_at=now,
                    )
                )
        except IntegrityError:
            return False
        return True

    async def add_row(self, kind: str, customer_id: str, **values: Any) -> None:
        """Insert an owned row (attribute, consent)."""
        await self.session.execute(
            insert(orm.OWNED[kind]).values(tenant_id=self.tenant, customer_id=customer_id, **values)
        )

    async def add_timeline(self, customer_id: str, *, source_event_id: str, **values: Any) -> bool:
        """Add a timeline entry once per source event (redelivery adds nothing)."""
        stmt = (
            self._insert(orm.timeline)
            .values(
                tenant_id=self.tenant,
                customer_id=customer_id,
                source_event_id=source_event_id,
                **values,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "source_event_id"])
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def has_attribute(self, customer_id: str, field: str, value: str) -> bool:
        """Whether the card already holds this value for the field (from any source)."""
        a = orm.attributes.c
        q = select(exists().where(a.customer_id == customer_id, a.field == field, a.value == value))
        return bool((await self.session.execute(q)).scalar())

    async def profile(self, customer_id: str) -> tuple[dict[str, str], set[str]]:
        """(latest language and tier, every name held) in one round trip (the message hot path)."""
        a = orm.attributes.c
        q = (
            select(a.field, a.value)
            .where(a.customer_id == customer_id, a.field.in_(("language", "tier", "name")))
            .order_by(a.recorded_at, a.id)
        )
        rows = (await self.session.execute(q)).all()
        latest = {r.field: r.value for r in rows if r.field != "name"}
        return latest, {r.value for r in rows if r.field == "name"}

    async def latest_attributes(self, customer_id: str, fields: tuple[str, ...]) -> dict[str, str]:
        """The most recent value of each of these fields."""
        a = orm.attributes.c
        q = (
            select(a.field, a.value)
            .where(a.customer_id == customer_id, a.field.in_(fields))
            .order_by(a.recorded_at, a.id)
        )
        return {r.field: r.value for r in await self.session.execute(q)}

    async def recent_orders(
        self, customer_ids: set[str], since: datetime
    ) -> dict[str, tuple[str, ...]]:
        """Each customer's orders placed since `since`, newest first, at most 5 (on the
        attributed message, so routing can tell which order a case is about)."""
        o = orm.orders.c
        q = (
            select(o.customer_id, o.order_id)
            .where(
                o.tenant_id == self.tenant,
                o.customer_id.in_(sorted(customer_ids)),
                o.placed_at >= since,
            )
            .order_by(o.customer_id, o.placed_at.desc(), o.id.desc())
        )
        found: dict[str, list[str]] = {}
        for row in await self.session.execute(q):
            ids = found.setdefault(row.customer_id, [])
            if len(ids) < 5:
                ids.append(row.order_id)
        return {c: tuple(ids) for c, ids in found.items()}

    async def order(self, order_id: str) -> Row[Any] | None:
        """An order row by the shop's order id."""
        o = orm.orders.c
        q = select(orm.orders).where(o.tenant_id == self.tenant, o.order_id == order_id)
        return (await self.session.execute(q)).first()

    async def save_order(self, customer_id: str, order_id: str, **values: Any) -> None:
        """Insert or update an order (an existing order keeps its owner)."""
        stmt = self._insert(orm.orders).values(
            tenant_id=self.tenant, customer_id=customer_id, order_id=order_id, **values
        )
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "order_id"], set_=values)
        await self.session.execute(stmt)

    async def save_shipment(self, shipment_id: str, **values: Any) -> None:
        """Insert or update the latest state of a shipment (older events never win)."""
        s = orm.shipments.c
        stmt = self._insert(orm.shipments).values(
            tenant_id=self.tenant, shipment_id=shipment_id, **values
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["tenant_id", "shipment_id"],
            set_=values,
            where=s.occurred_at <= stmt.excluded.occurred_at,
        )
        await self.session.execute(stmt)

    async def save_ticket(self, ticket_id: str, *, customer_id: str, **values: Any) -> None:
        """Insert or update what the card shows of a ticket (a ticket keeps its first customer)."""
        first = {**values, "status": values.get("status") or "open"}
        stmt = self._insert(orm.tickets).values(
            tenant_id=self.tenant, ticket_id=ticket_id, customer_id=customer_id, **first
        )
        changes = {k: v for k, v in values.items() if v is not None and k != "opened_at"}
        stmt = stmt.on_conflict_do_update(index_elements=["tenant_id", "ticket_id"], set_=changes)
        await self.session.execute(stmt)

    async def aggregate(self, row: Row[Any]) -> Customer:
        """The customer with the ids of every row it owns (for merges)."""
        c = Customer(
            id=row.id,
            status=Status(row.status),
            merged_into=row.merged_into,
            created_at=row.created_at,
        )
        for kind in ROW_KINDS:
            t = orm.OWNED[kind]
            ids = await self.session.execute(select(t.c.id).where(t.c.customer_id == row.id))
            c.rows[kind] = set(ids.scalars())
        return c

    async def move(self, rows: dict[str, tuple[int, ...]], to: str) -> None:
        """Give exactly these rows to another customer."""
        for kind, ids in rows.items():
            if ids:
                t = orm.OWNED[kind]
                await self.session.execute(update(t).where(t.c.id.in_(ids)).values(customer_id=to))

    async def set_status(self, customer: Customer, now: datetime) -> None:
        """Persist a customer's status and merge pointer."""
        await self.session.execute(
            update(orm.customers)
            .where(orm.customers.c.id == customer.id)
            .values(status=customer.status, merged_into=customer.merged_into, updated_at=now)
        )

    async def add_merge(self, m: Merge, *, provenance: dict[str, Any], now: datetime) -> None:
        """Record a merge with the rows it moved."""
        await self.session.execute(
            insert(orm.merges).values(
                id=m.id,
                tenant_id=self.tenant,
                survivor_id=m.survivor_id,
                merged_id=m.merged_id,
                provenance=provenance,
                moved={k: list(v) for k, v in m.moved.items()},
                created_at=now,
            )
        )

    async def merge_row(self, merge_id: str) -> Row[Any] | None:
        """A merge record of this tenant."""
        m = orm.merges.c
        q = select(orm.merges).where(m.tenant_id == self.tenant, m.id == merge_id)
        return (await self.session.execute(q)).first()

    async def mark_undone(
        self, merge_id: str, *, provenance: dict[str, Any], now: datetime
    ) -> None:
        """Record that a merge was undone."""
        await self.session.execute(
            update(orm.merges)
            .where(orm.merges.c.id == merge_id)
            .values(undone_at=now, undo_provenance=provenance)
        )
