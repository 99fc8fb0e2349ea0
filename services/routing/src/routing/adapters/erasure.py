"""Queries of erasure: a person's cases keep their ids, times and counts, lose what names them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import or_, select, update

from routing.adapters import orm
from routing.adapters.writes import TenantQueries


class ErasureQueries(TenantQueries):
    """Scrubbing an erased customer's cases, for one tenant (mixed into the repository)."""

    async def scrub_customers(self, customer_ids: Iterable[str]) -> int:
        """Blank the handle, subject and thread refs of the customers' cases (also of cases a merge
        moved away from them) and the words of their history; the number of cases touched."""
        ids = list(customer_ids)
        t = orm.tickets.c
        owned = (t.tenant_id == self.tenant) & or_(
            t.customer_id.in_(ids), t.original_customer_id.in_(ids)
        )
        tickets = list((await self.execute(select(t.id).where(owned))).scalars())
        if not tickets:
            return 0
        await self.execute(
            update(orm.tickets)
            .where(t.tenant_id == self.tenant, t.id.in_(tickets))
            .values(recipient=None, subject=None, last_provider_message_id=None)
        )
        m = orm.ticket_messages.c
        await self.execute(
            update(orm.ticket_messages)  # message ids stay: they keep redeliveries out
            .where(
                m.tenant_id == self.tenant,
                or_(m.ticket_id.in_(tickets), m.origin_ticket_id.in_(tickets)),
            )
            .values(text="", thread_id=None)
        )
        return len(tickets)
