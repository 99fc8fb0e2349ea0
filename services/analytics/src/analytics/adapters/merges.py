"""Queries of crm's customer merges as analytics keeps them (`kpi_merges`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters.orm import merges
from analytics.adapters.repository import utc


@dataclass(frozen=True)
class Merge:
    """`merged` resolves to `survivor` while the merge is not undone."""

    merge_id: str
    survivor: str
    merged: str
    at: datetime
    undone: bool = False


async def get(session: AsyncSession, tenant: str, merge_id: str) -> Merge | None:
    """A merge by id (also one only known from its undo)."""
    m = merges.c
    row = (
        await session.execute(
            select(m.merge_id, m.survivor_id, m.merged_id, m.merged_at, m.undone).where(
                m.tenant_id == tenant, m.merge_id == merge_id
            )
        )
    ).first()
    return None if row is None else Merge(row[0], row[1], row[2], utc(row[3]), bool(row[4]))


async def active_from(
    session: AsyncSession, tenant: str, customers: Iterable[str]
) -> dict[str, list[Merge]]:
    """The merges not undone that merged each of these customers away (by merged id)."""
    m = merges.c
    rows = await session.execute(
        select(m.merge_id, m.survivor_id, m.merged_id, m.merged_at).where(
            m.tenant_id == tenant, m.merged_id.in_(sorted(set(customers))), m.undone.is_(False)
        )
    )
    out: dict[str, list[Merge]] = {}
    for mid, survivor, merged, at in rows:
        out.setdefault(merged, []).append(Merge(mid, survivor, merged, utc(at)))
    return out


async def add(session: AsyncSession, tenant: str, merge: Merge) -> None:
    """Record a merge (or, undone, an undo that arrived before its merge)."""
    await session.execute(
        merges.insert().values(
            tenant_id=tenant,
            merge_id=merge.merge_id,
            survivor_id=merge.survivor,
            merged_id=merge.merged,
            merged_at=merge.at,
            undone=merge.undone,
        )
    )


async def undo(session: AsyncSession, tenant: str, merge_id: str) -> None:
    """Mark a merge undone."""
    m = merges.c
    await session.execute(
        update(merges).where(m.tenant_id == tenant, m.merge_id == merge_id).values(undone=True)
    )
