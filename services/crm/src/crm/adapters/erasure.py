"""Queries of erasure: tombstones of hashed handles, and purging a person's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm.adapters import orm
from crm.domain.handles import HandleKey
from crm.domain.model import Status


class ErasureQueries:
    """Tombstones and purging, for one tenant (part of the customer repository)."""

    session: AsyncSession
    tenant: str
    tombstone_secret: bytes | None

    def tombstone_of(self, handle: HandleKey) -> str:
        """The keyed hash a tombstone keeps of a handle."""
        if not self.tombstone_secret:
            raise RuntimeError("crm has no tombstone secret (bootstrap passes it to the Ctx)")
        return handle.hashed(self.tenant, secret=self.tombstone_secret)

    async def erased_since(self, handle: HandleKey, when: datetime) -> bool:
        """Whether the handle's person was erased at or after `when` (old data must stay gone)."""
        t = orm.tombstones.c
        q = select(t.erased_at).where(
            t.tenant_id == self.tenant, t.handle_hash == self.tombstone_of(handle)
        )
        erased = (await self.session.execute(q)).scalar_one_or_none()
        return erased is not None and _aware(erased) >= when

    async def erased_at_of(self, handles: set[HandleKey]) -> dict[HandleKey, datetime]:
        """When each of these handles' person was erased (handles never erased are absent)."""
        if not handles:
            return {}
        by_hash = {self.tombstone_of(h): h for h in handles}
        t = orm.tombstones.c
        q = select(t.handle_hash, t.erased_at).where(
            t.tenant_id == self.tenant, t.handle_hash.in_(list(by_hash))
        )
        rows = await self.session.execute(q)
        return {by_hash[r.handle_hash]: _aware(r.erased_at) for r in rows}

    async def add_tombstones(self, customer_id: str, hashes: list[str], now: datetime) -> None:
        """Remember erased handles (hashed) and when they were erased."""
        for h in hashes:
            insert = (
                pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
            )
            stmt = insert(orm.tombstones).values(
                tenant_id=self.tenant, handle_hash=h, customer_id=customer_id, erased_at=now
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["tenant_id", "handle_hash"],
                set_={"erased_at": now, "customer_id": customer_id},
            )
            await self.session.execute(stmt)

    async def purge(
        self,
        cid: str,
        ids: list[str],
        *,
        order_ids: list[str],
        merges: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Erase: delete personal rows, blank timeline text, scrub merge provenance, mark erased."""
        for kind in ("identities", "attributes", "consents", "orders"):
            await self.delete_owned(kind, cid)
        tk = orm.tickets.c
        await self.session.execute(
            delete(orm.tickets).where(tk.tenant_id == self.tenant, tk.customer_id.in_(ids))
        )
        sh = orm.shipments.c
        await self.session.execute(
            delete(orm.shipments).where(sh.tenant_id == self.tenant, sh.order_id.in_(order_ids))
        )
        # Timeline rows stay, without text, as the natural keys that keep redeliveries out.
        t = orm.timeline
        await self.session.execute(
            update(t).where(t.c.customer_id == cid).values(summary=None, ref="")
        )
        for m in merges:
            await self.session.execute(
                update(orm.merges)
                .where(orm.merges.c.id == m["id"])
                .values(
                    provenance=_scrub(m["provenance"]), undo_provenance=_scrub(m["undo_provenance"])
                )
            )
        c = orm.customers.c
        await self.session.execute(
            update(orm.customers)
            .where(c.tenant_id == self.tenant, c.id.in_(ids))
            .values(status=Status.ERASED, erased_at=now, updated_at=now)
        )

    async def delete_owned(self, kind: str, customer_id: str) -> None:
        """Delete every row of a kind owned by a customer."""
        t = orm.OWNED[kind]
        await self.session.execute(delete(t).where(t.c.customer_id == customer_id))


def _aware(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; they are UTC."""
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _scrub(prov: dict[str, Any] | None) -> dict[str, Any] | None:
    """A provenance without the handle it named."""
    return {k: v for k, v in prov.items() if k != "handle"} if prov else None
