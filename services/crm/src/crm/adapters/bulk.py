"""Set-at-a-time queries of the attribution hot path: a batch of messages in a few round trips."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.adapters import orm
from crm.domain.handles import HandleKey
from crm.domain.model import Status

Profile = tuple[dict[str, str], set[str]]


def _any_of(handles: Sequence[HandleKey]) -> ColumnElement[bool]:
    """Identity rows of these handles, as `value IN (...)` per kind and scope: PostgreSQL plans
    it as one index scan per kind (a row-value IN list becomes an OR it is slow to plan)."""
    i = orm.identities.c
    groups: dict[tuple[str, str], list[str]] = {}
    for h in handles:
        groups.setdefault((h.kind, h.scope), []).append(h.value)
    return or_(*(and_(i.kind == k, i.scope == s, i.value.in_(v)) for (k, s), v in groups.items()))


class BulkQueries:
    """The many-rows forms of the repository's hot queries (part of the customer repository)."""

    session: AsyncSession
    tenant: str

    def _insert(self, table: Any) -> Any:  # provided by the repository
        raise NotImplementedError

    async def owner_rows(self, handles: Sequence[HandleKey]) -> dict[HandleKey, Row[Any]]:
        """The customer rows holding these handles, locked in id order (no deadlock between
        batches; merges lock in id order too). A row may be merged away: callers follow it."""
        if not handles:
            return {}
        i, c = orm.identities.c, orm.customers.c
        q = (
            select(i.kind, i.scope, i.value, orm.customers)
            .join(orm.customers, i.customer_id == c.id)
            .where(i.tenant_id == self.tenant, _any_of(handles))
            .order_by(c.id)
            .with_for_update(of=orm.customers)
        )
        rows = (await self.session.execute(q)).all()
        return {HandleKey(r.kind, r.value, r.scope): r for r in rows}

    async def add_customers_holding(
        self, handles: Sequence[HandleKey], refs: Sequence[str], *, source: str, now: datetime
    ) -> dict[HandleKey, str] | None:
        """A new customer per handle, each holding its handle; None if another transaction
        took any of the handles first (the caller then resolves them one by one)."""
        ids = [str(uuid.uuid4()) for _ in handles]
        await self.session.execute(
            insert(orm.customers),
            [
                dict(
                    id=cid,
                    tenant_id=self.tenant,
                    status=Status.ACTIVE,
                    created_at=now,
                    updated_at=now,
                )
                for cid in ids
            ],
        )
        i = orm.identities.c
        stmt = (
            self._insert(orm.identities)
            .on_conflict_do_nothing(index_elements=["tenant_id", "kind", "scope", "value"])
            .returning(i.customer_id)
        )
        rows = [
            dict(
                tenant_id=self.tenant,
                customer_id=cid,
                kind=h.kind,
                scope=h.scope,
                value=h.value,
                source=source,
                source_ref=ref,
                created_at=now,
            )
            for cid, h, ref in zip(ids, handles, refs, strict=True)
        ]
        won = set((await self.session.execute(stmt, rows)).scalars())
        if len(won) != len(ids):
            return None
        return dict(zip(handles, ids, strict=True))

    async def profiles(self, customer_ids: Sequence[str]) -> dict[str, Profile]:
        """Per customer: (latest language and tier, every name held), in one round trip."""
        out: dict[str, Profile] = {cid: ({}, set()) for cid in customer_ids}
        if not customer_ids:
            return out
        a = orm.attributes.c
        q = (
            select(a.customer_id, a.field, a.value)
            .where(a.customer_id.in_(list(customer_ids)), a.field.in_(("language", "tier", "name")))
            .order_by(a.recorded_at, a.id)
        )
        for r in await self.session.execute(q):
            latest, names = out[r.customer_id]
            if r.field == "name":
                names.add(r.value)
            else:
                latest[r.field] = r.value
        return out

    async def add_rows(self, kind: str, rows: Sequence[dict[str, Any]]) -> None:
        """Insert owned rows (attributes, consents) of this tenant in one statement."""
        if rows:
            table = orm.OWNED[kind]
            await self.session.execute(
                insert(table), [{"tenant_id": self.tenant, **r} for r in rows]
            )

    async def add_timelines(self, rows: Sequence[dict[str, Any]]) -> None:
        """Timeline entries, once per source event (redelivered ones add nothing)."""
        if rows:
            stmt = self._insert(orm.timeline).on_conflict_do_nothing(
                index_elements=["tenant_id", "source_event_id"]
            )
            await self.session.execute(stmt, [{"tenant_id": self.tenant, **r} for r in rows])
