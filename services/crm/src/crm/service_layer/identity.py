"""Identity resolution: find or create a customer by handle, link handles, merge and undo."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from crm.domain import model
from crm.domain.handles import HandleKey
from crm.service_layer.context import Ctx, to_handle
from crm.service_layer.errors import CannotMerge, CannotUndo, CustomerNotFound, MergeNotFound
from sbcontracts.events.crm import (
    CustomerCreated,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerUnmerged,
    Provenance,
)

RACE_RETRIES = 5


async def live_id(ctx: Ctx, customer_id: str) -> str:
    """The live customer an id resolves to, locked for this transaction, or CustomerNotFound."""
    row = await ctx.repo.live(customer_id, lock=True)
    if row is None:
        raise CustomerNotFound(f"no customer {customer_id}")
    return str(row.id)


async def create_customer(ctx: Ctx, handles: list[HandleKey], prov: Provenance) -> str:
    """A new customer holding these (unclaimed) handles; emits customer.created."""
    cid = await ctx.repo.add_customer(ctx.now)
    for h in handles:
        if not await ctx.repo.add_identity(cid, h, source=prov.kind, ref=prov.ref, now=ctx.now):
            raise CannotMerge(f"handle {h.kind} is already held by another customer")
    await ctx.emit(
        CustomerCreated(
            customer_id=cid,
            handles=tuple(to_handle(h) for h in handles),
            provenance=prov,
            created_at=ctx.now,
        ),
        cid,
    )
    return cid


async def find_or_create(
    ctx: Ctx, handle: HandleKey, prov: Provenance, *, lock: bool = True
) -> tuple[str, bool]:
    """(live customer id, created) for a handle; concurrent first contacts yield one customer."""
    for _ in range(RACE_RETRIES):
        if lock:
            row = await ctx.repo.live_owner(handle)
        else:
            owner = await ctx.repo.owner_of(handle)
            row = await ctx.repo.live(owner) if owner is not None else None
        if row is not None:
            return str(row.id), False
        cid = await ctx.repo.add_customer(ctx.now)
        if await ctx.repo.add_identity(cid, handle, source=prov.kind, ref=prov.ref, now=ctx.now):
            created = CustomerCreated(
                customer_id=cid, handles=(to_handle(handle),), provenance=prov, created_at=ctx.now
            )
            await ctx.emit(created, cid)
            return cid, True
        await ctx.repo.drop_customer(cid)  # another transaction created it first
    raise RuntimeError(f"handle {handle.kind} kept changing owner")


async def resolved_id(ctx: Ctx, customer_id: str) -> str:
    """The live customer an id resolves to, without locking (locks come in id order later)."""
    row = await ctx.repo.live(customer_id)
    if row is None:
        raise CustomerNotFound(f"no customer {customer_id}")
    return str(row.id)


async def link(
    ctx: Ctx,
    customer_id: str,
    handle: HandleKey,
    prov: Provenance,
    *,
    survivor: Literal["target", "older"] = "older",
) -> str:
    """Attach a handle to a customer; if another customer holds it they merge. Returns the live id."""
    for _ in range(RACE_RETRIES):
        owner = await ctx.repo.owner_of(handle)
        if owner is None:
            target = await live_id(ctx, customer_id)
            if not await ctx.repo.add_identity(
                target, handle, source=prov.kind, ref=prov.ref, now=ctx.now
            ):
                continue
            linked = CustomerIdentityLinked(
                customer_id=target, handle=to_handle(handle), provenance=prov, linked_at=ctx.now
            )
            await ctx.emit(linked, target)
            return target
        target, holder = await resolved_id(ctx, customer_id), await resolved_id(ctx, owner)
        if holder == target:
            return await live_id(ctx, target)
        try:
            async with ctx.uow.session.begin_nested():  # a refused merge releases its row locks
                m = await merge(ctx, target, holder, prov, survivor=survivor)
        except CannotMerge:
            continue  # one of them was merged meanwhile: resolve again
        return m.survivor_id
    raise RuntimeError(f"handle {handle.kind} kept changing owner")


async def _aggregates(ctx: Ctx, a_id: str, b_id: str) -> tuple[model.Customer, model.Customer]:
    """Both customers locked (in id order, so concurrent merges cannot deadlock) with their rows."""
    rows = {}
    for cid in sorted({a_id, b_id}):
        row = await ctx.repo.customer(cid, lock=True)
        if row is None:
            raise CustomerNotFound(f"no customer {cid}")
        rows[cid] = row
    return await ctx.repo.aggregate(rows[a_id]), await ctx.repo.aggregate(rows[b_id])


async def merge(
    ctx: Ctx,
    a_id: str,
    b_id: str,
    prov: Provenance,
    *,
    survivor: Literal["target", "older"] = "target",
) -> model.Merge:
    """Merge two live customers (`a_id` survives, or the older with survivor="older")."""
    a, b = await _aggregates(ctx, a_id, b_id)
    keep, gone = model.survivor_of(a, b) if survivor == "older" else (a, b)
    try:
        m = model.merge(keep, gone, merge_id=str(uuid.uuid4()))
    except model.MergeRefused as exc:
        raise CannotMerge(str(exc), customer_ids=[a_id, b_id]) from exc
    await ctx.repo.move(m.moved, keep.id)
    await ctx.repo.set_status(gone, ctx.now)
    await ctx.repo.touch(keep.id, ctx.now)
    await ctx.repo.add_merge(m, provenance=prov.model_dump(mode="json"), now=ctx.now)
    event = CustomerMerged(
        merge_id=m.id,
        customer_id=keep.id,
        survivor_id=keep.id,
        merged_id=gone.id,
        provenance=prov,
        merged_at=ctx.now,
    )
    await ctx.emit(event, keep.id)
    return m


def _merge_of(row: Any) -> model.Merge:
    """The domain merge of a stored merge record."""
    moved = {k: tuple(row.moved.get(k, ())) for k in model.ROW_KINDS}
    return model.Merge(
        id=row.id,
        survivor_id=row.survivor_id,
        merged_id=row.merged_id,
        moved=moved,
        undone=row.undone_at is not None,
    )


async def undo(ctx: Ctx, merge_id: str, prov: Provenance) -> model.Merge:
    """Undo a merge: both customers get back exactly the rows they had before it."""
    row = await ctx.repo.merge_row(merge_id)
    if row is None:
        raise MergeNotFound(f"no merge {merge_id}")
    m = _merge_of(row)
    survivor, merged = await _aggregates(ctx, m.survivor_id, m.merged_id)
    try:
        back = model.undo(m, survivor, merged)
    except model.UndoRefused as exc:
        raise CannotUndo(str(exc), merge_id=merge_id) from exc
    await ctx.repo.move(back, merged.id)
    await ctx.repo.set_status(merged, ctx.now)
    await ctx.repo.touch(survivor.id, ctx.now)
    await ctx.repo.mark_undone(merge_id, provenance=prov.model_dump(mode="json"), now=ctx.now)
    handles = await ctx.repo.handles_of(back["identities"])
    event = CustomerUnmerged(
        merge_id=m.id,
        customer_id=survivor.id,
        survivor_id=survivor.id,
        restored_id=merged.id,
        moved_back=tuple(to_handle(h) for h in handles),
        provenance=prov,
        unmerged_at=ctx.now,
    )
    await ctx.emit(event, survivor.id)
    return m
