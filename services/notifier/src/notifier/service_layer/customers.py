"""The customer read model from crm's events, STOP from inbound messages, and open cases from routing."""

from __future__ import annotations

from typing import Any

from notifier.domain.policy import Customer
from notifier.service_layer import merges
from notifier.service_layer.context import Ctx
from sbcontracts.events import crm, routing
from sbcontracts.events.ingest import MessageReceived

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "STOP ALL"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
CLOSED = frozenset({"resolved", "closed"})


REVIVING = (crm.CustomerCreated, crm.CustomerIdentityLinked, crm.CustomerUpdated)


async def on_customer(ctx: Ctx, data: Any) -> None:
    """Apply one customer.* event to the read model (an erased customer's old events, replayed
    or re-sent, are void: they would store the person's handles again)."""
    repo = ctx.repo
    if isinstance(data, REVIVING) and await repo.erased(data.customer_id):
        return
    if isinstance(data, crm.CustomerCreated):
        await repo.put_customer(data.customer_id)
        for h in data.handles:
            await repo.link(h.kind.value, h.value, data.customer_id)
    elif isinstance(data, crm.CustomerIdentityLinked):
        await repo.link(data.handle.kind.value, data.handle.value, data.customer_id)
    elif isinstance(data, crm.CustomerUpdated):
        values = {
            k: getattr(data, k)
            for k in ("language", "timezone", "preferred_channel")
            if getattr(data, k) is not None
        }
        await repo.put_customer(data.customer_id, **values)
        await _service_consents(ctx, data)
    elif isinstance(data, crm.CustomerMerged):
        await merges.on_merged(ctx, data)
    elif isinstance(data, crm.CustomerUnmerged):
        await merges.on_unmerged(ctx, data)
    elif isinstance(data, crm.CustomerErased):
        await repo.forget([data.customer_id, *data.erased_ids], data.erased_at)


async def _service_consents(ctx: Ctx, data: crm.CustomerUpdated) -> None:
    """crm's service consents that this event changed: a withdrawal turns the channel off, a grant on.

    Only decisions the event names in `fields` apply, so a channel turned off by a later STOP is not
    turned back on by an older grant resent with the customer's other consents.
    """
    changed = {
        c.channel: c.granted
        for c in data.consents
        if c.purpose == "service" and f"consent.{c.channel}.service" in data.fields
    }
    customer = await ctx.repo.customer(data.customer_id) if changed else None
    if customer is None:
        return
    off = {ch for ch, granted in changed.items() if not granted}
    opted = (set(customer.opted_out) - set(changed)) | off
    await ctx.repo.put_customer(customer.customer_id, opted_out=sorted(opted))


async def on_message(ctx: Ctx, msg: MessageReceived) -> None:
    """An inbound STOP turns service messages on that channel off (START turns them back on)."""
    word = " ".join(msg.text.strip().upper().split())
    if word not in STOP_WORDS and word not in START_WORDS:
        return
    customer_id = await ctx.repo.owner(msg.sender.kind.value, msg.sender.value)
    customer = await ctx.repo.customer(customer_id) if customer_id else None
    if customer is None:
        return
    channels = {msg.channel.value}
    opted = set(customer.opted_out)
    opted = opted | channels if word in STOP_WORDS else opted - channels
    await ctx.repo.put_customer(customer.customer_id, opted_out=sorted(opted))


async def on_ticket(ctx: Ctx, data: Any) -> None:
    """Track which cases are open about which orders."""
    if isinstance(data, routing.TicketOpened):
        await ctx.repo.put_case(
            data.ticket_id, customer_id=data.customer_id, order_id=data.order_id, open=True
        )
    elif isinstance(data, routing.TicketReopened):
        await ctx.repo.put_case(data.ticket_id, customer_id=data.customer_id, open=True)
    elif isinstance(data, routing.TicketResolved):
        await ctx.repo.put_case(data.ticket_id, customer_id=data.customer_id, open=False)
    elif isinstance(data, routing.TicketStatusChanged):
        await ctx.repo.put_case(
            data.ticket_id, customer_id=data.customer_id, open=data.to_status.value not in CLOSED
        )


async def for_order(ctx: Ctx, order_id: str | None) -> tuple[str, Customer | None]:
    """The customer an order belongs to (crm's read model first, else the order's own contacts)."""
    return await customer_of(ctx, await ctx.repo.order(order_id) if order_id else None, order_id)


async def customer_of(ctx: Ctx, order: Any, order_id: str | None) -> tuple[str, Customer | None]:
    """`for_order` with the order as it was read (None: unknown)."""
    if order is None:
        return f"order:{order_id or 'unknown'}", None
    contacts = {"email": order.customer_email, "phone": order.customer_phone}
    for kind, value in contacts.items():
        owner = await ctx.repo.owner(kind, value) if value else None
        known = await ctx.repo.customer(owner) if owner else None
        if known:
            return known.customer_id, _with_order_defaults(known, order)
    handles = {k: v for k, v in contacts.items() if v}
    customer = Customer(
        f"order:{order_id}", language=order.language, timezone=order.timezone, handles=handles
    )
    return customer.customer_id, customer


def _with_order_defaults(customer: Customer, order: Any) -> Customer:
    """Fill what crm does not know yet from the order (language, time zone)."""
    return Customer(
        customer.customer_id,
        language=customer.language or order.language,
        timezone=customer.timezone or order.timezone,
        preferred_channel=customer.preferred_channel,
        handles=customer.handles,
        opted_out=customer.opted_out,
    )
