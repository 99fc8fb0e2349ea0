"""Use cases for crm's customer merges: a merge moves the merged customer's derived entities (cases,
cycles, alerts) to the survivor, an undo gives each back to the customer it came from; both
recompute the customers whose entities moved and add only the differences to the buckets."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.adapters import merges, repository
from analytics.adapters.merges import Merge
from analytics.service_layer import derive, identity
from sbcontracts.events.crm import CustomerMerged, CustomerUnmerged


async def on_merged(
    session: AsyncSession, tenant: str, data: CustomerMerged, deltas: repository.Deltas
) -> None:
    """`merged_id` now resolves to `survivor_id` (and what merged into it before, too)."""
    merge = Merge(data.merge_id, data.survivor_id, data.merged_id, data.merged_at)
    ids = [data.merged_id, data.survivor_id]
    after = await identity.Resolver(session, tenant, add=merge).roots(ids)
    before = await identity.lock_roots(session, tenant, ids, also=after)
    if await merges.get(session, tenant, data.merge_id) is not None:
        return  # crm sent it again, or its undo came first: the merge never holds
    await merges.add(session, tenant, merge)
    identity.forget(session, tenant)
    await derive.regroup(session, tenant, [*before, *after], deltas)


async def on_unmerged(
    session: AsyncSession, tenant: str, data: CustomerUnmerged, deltas: repository.Deltas
) -> None:
    """Undo a merge by id; an undo ahead of its merge is kept, so that merge never holds."""
    merge = await merges.get(session, tenant, data.merge_id)
    if merge is None:
        undone = Merge(
            data.merge_id, data.survivor_id, data.restored_id, data.unmerged_at, undone=True
        )
        await merges.add(session, tenant, undone)
        identity.forget(session, tenant)
        return
    ids = [merge.merged, merge.survivor]
    after = await identity.Resolver(session, tenant, drop=merge.merge_id).roots(ids)
    before = await identity.lock_roots(session, tenant, ids, also=after)
    merge = await merges.get(session, tenant, data.merge_id)
    if merge is None or merge.undone:
        return
    await merges.undo(session, tenant, data.merge_id)
    identity.forget(session, tenant)
    await derive.regroup(session, tenant, [*before, *after], deltas)
