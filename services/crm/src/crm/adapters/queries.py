"""Read-side queries of crm: the card, the timeline, search and export (one tenant each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.adapters import orm
from crm.domain.handles import HandleKey


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


class CustomerQueries:
    """Everything an agent or an export reads about customers of one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: str) -> None:
        self.session = session
        self.tenant = tenant_id

    async def _owned(self, kind: str, customer_id: str, *order: Any) -> list[dict[str, Any]]:
        t = orm.OWNED[kind]
        q = select(t).where(t.c.tenant_id == self.tenant, t.c.customer_id == customer_id)
        return _rows(await self.session.execute(q.order_by(*order, t.c.id)))

    async def identities(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's handles, oldest first."""
        return await self._owned("identities", customer_id)

    async def attributes(self, customer_id: str) -> list[dict[str, Any]]:
        """Every attribute value with its provenance, oldest first."""
        return await self._owned("attributes", customer_id, orm.attributes.c.recorded_at)

    async def consents(self, customer_id: str) -> list[dict[str, Any]]:
        """Every consent decision, oldest first."""
        return await self._owned("consents", customer_id, orm.consents.c.recorded_at)

    async def timeline_all(self, customer_id: str) -> list[dict[str, Any]]:
        """The whole timeline, oldest first (export)."""
        return await self._owned("timeline", customer_id, orm.timeline.c.occurred_at)

    async def message_ids(self, customer_id: str) -> list[str]:
        """Ids of the inbound messages on the customer's timeline (erasure names them)."""
        t = orm.timeline.c
        q = select(t.ref).where(
            t.tenant_id == self.tenant, t.customer_id == customer_id, t.kind == "message"
        )
        return sorted({r for r in (await self.session.execute(q)).scalars() if r})

    async def orders(self, customer_id: str) -> list[dict[str, Any]]:
        """Orders, newest first, each with its shipments' latest status."""
        o, s = orm.orders.c, orm.shipments.c
        rows = _rows(
            await self.session.execute(
                select(orm.orders)
                .where(o.tenant_id == self.tenant, o.customer_id == customer_id)
                .order_by(o.placed_at.desc(), o.id.desc())
                .limit(50)
            )
        )
        ids = [r["order_id"] for r in rows]
        ships = _rows(
            await self.session.execute(
                select(orm.shipments).where(s.tenant_id == self.tenant, s.order_id.in_(ids))
            )
        )
        for r in rows:
            r["shipments"] = [x for x in ships if x["order_id"] == r["order_id"]]
        return rows

    async def timeline(
        self, customer_id: str, *, before: tuple[datetime, int] | None, limit: int
    ) -> list[dict[str, Any]]:
        """A page of the timeline, newest first, strictly older than the cursor."""
        t = orm.timeline.c
        q = select(orm.timeline).where(t.tenant_id == self.tenant, t.customer_id == customer_id)
        if before is not None:
            at, row_id = before
            q = q.where(or_(t.occurred_at < at, and_(t.occurred_at == at, t.id < row_id)))
        q = q.order_by(t.occurred_at.desc(), t.id.desc()).limit(limit)
        return _rows(await self.session.execute(q))

    async def tickets(self, customer_ids: list[str]) -> list[dict[str, Any]]:
        """Tickets of these customer ids (a survivor and the ids merged into it), newest first."""
        t = orm.tickets.c
        q = (
            select(orm.tickets)
            .where(t.tenant_id == self.tenant, t.customer_id.in_(customer_ids))
            .order_by(t.updated_at.desc())
            .limit(50)
        )
        return _rows(await self.session.execute(q))

    async def owners(self, handles: list[HandleKey]) -> list[str]:
        """Customer ids holding any of these handles."""
        i = orm.identities.c
        found: list[str] = []
        for h in handles:
            q = select(i.customer_id).where(
                i.tenant_id == self.tenant, i.kind == h.kind, i.scope == h.scope, i.value == h.value
            )
            found.extend((await self.session.execute(q)).scalars())
        return found

    async def by_name(self, text: str, limit: int) -> list[str]:
        """Customer ids whose name (any source) contains the text, case-insensitively."""
        a = orm.attributes.c
        q = (
            select(a.customer_id)
            .where(
                a.tenant_id == self.tenant,
                a.field == "name",
                a.value.icontains(text, autoescape=True),
            )
            .distinct()
            .limit(limit)
        )
        return list((await self.session.execute(q)).scalars())

    async def merges_of(self, customer_ids: list[str]) -> list[dict[str, Any]]:
        """Merges that involved any of these customers."""
        m = orm.merges.c
        q = select(orm.merges).where(
            m.tenant_id == self.tenant,
            or_(m.survivor_id.in_(customer_ids), m.merged_id.in_(customer_ids)),
        )
        return _rows(await self.session.execute(q.order_by(m.created_at)))

    async def merged_into(self, customer_id: str) -> list[str]:
        """Every customer id that was merged (directly or in a chain) into this one."""
        c = orm.customers.c
        found: list[str] = []
        frontier = [customer_id]
        while frontier:
            q = select(c.id).where(c.tenant_id == self.tenant, c.merged_into.in_(frontier))
            frontier = [x for x in (await self.session.execute(q)).scalars() if x not in found]
            found.extend(frontier)
        return found
