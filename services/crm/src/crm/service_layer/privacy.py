"""The person's rights: export everything held about them; erase it for good."""

from __future__ import annotations

from typing import Any

from crm.adapters.queries import CustomerQueries
from crm.domain.handles import HandleKey
from crm.service_layer.card import card, live_row
from crm.service_layer.context import Ctx
from sbcontracts.events.crm import CustomerErased


async def export(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """Everything crm holds about the person, machine-readable."""
    row = await live_row(ctx, customer_id)
    q = CustomerQueries(ctx.uow.session, ctx.tenant)
    ids = [row.id, *await q.merged_into(row.id)]
    return {
        "format": "switchboard.crm.export/1",
        "exported_at": ctx.now,
        "customer_ids": ids,
        "card": await card(ctx, row.id),
        "identities": await q.identities(row.id),
        "attributes": await q.attributes(row.id),
        "consents": await q.consents(row.id),
        "orders": await q.orders(row.id),
        "timeline": await q.timeline_all(row.id),
        "tickets": await q.tickets(ids),
        "merges": await q.merges_of(ids),
    }


async def erase(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """Erase the person (and every id merged into them); keep only hashed handles as tombstones."""
    await live_row(ctx, customer_id)  # 404 for unknown, erased or another tenant's ids
    row = await ctx.repo.live(customer_id, lock=True)
    assert row is not None
    q = CustomerQueries(ctx.uow.session, ctx.tenant)
    ids = [row.id, *await q.merged_into(row.id)]
    handles = [HandleKey(i["kind"], i["value"], i["scope"]) for i in await q.identities(row.id)]
    hashes = sorted({ctx.repo.tombstone_of(h) for h in handles})
    await ctx.repo.add_tombstones(row.id, hashes, ctx.now)
    order_ids = [o["order_id"] for o in await q.orders(row.id)]
    message_ids = await q.message_ids(row.id)  # before the purge blanks the timeline's refs
    await ctx.repo.purge(
        row.id, ids, order_ids=order_ids, merges=await q.merges_of(ids), now=ctx.now
    )
    event = CustomerErased(
        customer_id=row.id,
        erased_ids=tuple(ids),
        handle_hashes=tuple(hashes),
        message_ids=tuple(message_ids),
        erased_at=ctx.now,
    )
    await ctx.emit(event, row.id)
    return {"customer_id": row.id, "erased_ids": ids, "erased_at": ctx.now}
