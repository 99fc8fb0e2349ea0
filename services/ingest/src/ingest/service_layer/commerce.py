"""Orders: placed once, updated when the same order id arrives with other content."""

from __future__ import annotations

from ingest.adapters import repository as repo
from ingest.service_layer.messages import SOURCE, Context
from ingest.service_layer.signals import fingerprint
from ingest.service_layer.transactions import UowFactory, committed
from sbcontracts.envelope import new_event
from sbcontracts.events.ingest import OrderData, OrderPlaced, OrderUpdated
from sbcontracts.topics import partition_key
from sbkit.db.uow import UnitOfWork


async def accept_order(new_uow: UowFactory, ctx: Context, order: OrderPlaced) -> str | None:
    """Emit order.placed for a new order, order.updated for a change; None for a redelivery."""
    digest = fingerprint(order)

    async def work(uow: UnitOfWork) -> str | None:
        seen = await repo.accepted_fingerprint(uow.session, ctx.tenant_id, "order", order.order_id)
        if seen == digest:
            return None
        data: OrderData = order
        if seen is None:
            await repo.add_accepted(
                uow.session,
                tenant_id=ctx.tenant_id,
                kind="order",
                natural_id=order.order_id,
                fingerprint=digest,
            )
        else:
            data = OrderUpdated(**order.model_dump())
            await repo.set_fingerprint(
                uow.session,
                tenant_id=ctx.tenant_id,
                kind="order",
                natural_id=order.order_id,
                fingerprint=digest,
            )
        event = new_event(
            data,
            tenant_id=ctx.tenant_id,
            source=SOURCE,
            subject=order.order_id,
            correlation_id=ctx.correlation_id,
        )
        await uow.emit(event, key=partition_key(ctx.tenant_id, order.order_id))
        return data.event_type

    return await committed(new_uow, work)
