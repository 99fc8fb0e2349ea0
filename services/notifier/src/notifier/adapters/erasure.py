"""Queries of erasure: the read model forgets the person; orders and alerts keep only facts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.adapters import orm
from notifier.adapters.sql import memo


class ErasureQueries:
    """Forgetting erased customers, for one tenant (mixed into the repository)."""

    session: AsyncSession
    tenant: str

    async def forget(self, customer_ids: Sequence[str], erased_at: datetime) -> None:
        """Erase customers, their handles and the merges that name them from the read model, blank
        the contacts of the orders placed with their handles and the recipients of their alerts.
        Tombstones (order flags, erased ids; no personal data) keep old events from restoring them."""
        known = memo(self.session)
        known.pop(("people", self.tenant), None)  # see Repository._people
        ids = list(customer_ids)
        orders = await self._orders_of(ids)
        o, n = orm.orders.c, orm.notifications.c
        if orders:  # promise, language and time zone stay: delay alerts and KPIs use them
            await self.session.execute(
                update(orm.orders)
                .where(o.tenant_id == self.tenant, o.order_id.in_(orders))
                .values(customer_email=None, customer_phone=None, contacts_erased=True)
            )
            for order_id in orders:  # a copy read earlier in this transaction is stale now
                known.pop(("order", self.tenant, order_id), None)
        await self._tombstone(ids, erased_at)
        await self.session.execute(
            update(orm.notifications)
            .where(n.tenant_id == self.tenant, or_(n.customer_id.in_(ids), n.order_id.in_(orders)))
            .values(recipient=None, note=None)
        )
        for table in (orm.handles, orm.customers):
            await self.session.execute(
                delete(table).where(table.c.tenant_id == self.tenant, table.c.customer_id.in_(ids))
            )
        m = orm.merges.c
        await self.session.execute(
            delete(orm.merges).where(
                m.tenant_id == self.tenant, or_(m.survivor_id.in_(ids), m.merged_id.in_(ids))
            )
        )

    async def _tombstone(self, customer_ids: list[str], erased_at: datetime) -> None:
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        rows = [
            {"tenant_id": self.tenant, "customer_id": i, "erased_at": erased_at}
            for i in sorted(set(customer_ids))
        ]
        if rows:
            await self.session.execute(insert(orm.erased_customers).on_conflict_do_nothing(), rows)

    async def erased(self, customer_id: str) -> bool:
        """Whether this customer was erased (its old events must not bring it back)."""
        c = orm.erased_customers.c
        q = select(c.customer_id).where(c.tenant_id == self.tenant, c.customer_id == customer_id)
        return (await self.session.execute(q)).first() is not None

    async def _orders_of(self, customer_ids: list[str]) -> list[str]:
        """Orders whose contact email or phone is one of these customers' handles."""
        h, o = orm.handles.c, orm.orders.c
        rows = await self.session.execute(
            select(h.kind, h.value).where(
                h.tenant_id == self.tenant,
                h.customer_id.in_(customer_ids),
                h.kind.in_(("email", "phone")),
            )
        )
        handles = rows.all()
        emails = [v.lower() for k, v in handles if k == "email"]
        phones = [v for k, v in handles if k == "phone"]
        if not emails and not phones:
            return []
        q = select(o.order_id).where(
            o.tenant_id == self.tenant,
            or_(func.lower(o.customer_email).in_(emails), o.customer_phone.in_(phones)),
        )
        return list((await self.session.execute(q)).scalars())
