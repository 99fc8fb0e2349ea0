"""Customer merges: the merged customer's cases follow the survivor; open cases fold into one; undo
splits; erasure leaves the cases (ids, times, counts for KPIs) without what names the person."""

from __future__ import annotations

from typing import Any

from routing.service_layer.assign import ACTIVE, drain, try_assign, unassign
from routing.service_layer.context import Ctx
from routing.service_layer.timers import stop_sla
from sbcontracts.events.crm import CustomerErased, CustomerMerged, CustomerUnmerged
from sbcontracts.events.routing import TicketStatus, TicketStatusChanged


def _newest_active(rows: list[Any]) -> Any | None:
    active = [r for r in rows if r.status in ACTIVE]
    return max(active, key=lambda r: (r.updated_at, r.id)) if active else None


async def on_merged(ctx: Ctx, data: CustomerMerged) -> None:
    """Re-key the merged customer's cases to the survivor and fold their open case into the survivor's."""
    survivor = _newest_active(list(await ctx.repo.customer_cases([data.survivor_id])))
    moved = list(await ctx.repo.customer_cases([data.merged_id]))
    for row in moved:
        await ctx.repo.update_ticket(
            row.id,
            customer_id=data.survivor_id,
            original_customer_id=data.merged_id,
            merge_id=data.merge_id,
        )
    if survivor is None:
        return
    for row in moved:
        if row.status in ACTIVE:
            await _fold(ctx, row, into=survivor.id)


async def _fold(ctx: Ctx, ticket: Any, *, into: str) -> None:
    await unassign(ctx, ticket)
    if ticket.agent_id:
        await drain(ctx, ticket.agent_id)
    await stop_sla(ctx, ticket.id)
    await ctx.repo.move_messages(ticket.id, into)
    await ctx.repo.update_ticket(
        ticket.id, status=TicketStatus.CLOSED, merged_into=into, updated_at=ctx.now
    )
    folded = await ctx.repo.ticket(ticket.id)
    await ctx.ticket_event(
        TicketStatusChanged, folded, from_status=ticket.status, to_status=TicketStatus.CLOSED
    )


async def on_unmerged(ctx: Ctx, data: CustomerUnmerged) -> None:
    """Give the restored customer back their cases; a folded case reopens with its own messages."""
    rows = await ctx.repo.list_tickets({"merge_id": data.merge_id}, limit=1000, offset=0)
    for row in rows:
        changes: dict[str, Any] = {
            "customer_id": row.original_customer_id or data.restored_id,
            "merge_id": None,
        }
        if row.merged_into:
            await ctx.repo.move_messages_back(row.merged_into, row.id)
            changes |= {"status": TicketStatus.OPEN, "merged_into": None, "queued_at": ctx.now}
        await ctx.repo.update_ticket(row.id, **changes, updated_at=ctx.now)
        if row.merged_into:
            split = await ctx.repo.ticket(row.id)
            await ctx.ticket_event(
                TicketStatusChanged,
                split,
                from_status=TicketStatus.CLOSED,
                to_status=TicketStatus.OPEN,
            )
            await try_assign(ctx, row.id)


async def on_erased(ctx: Ctx, data: CustomerErased) -> None:
    """Scrub the cases of every id that resolved to the erased person (idempotent)."""
    await ctx.repo.scrub_customers({data.customer_id, *data.erased_ids})
