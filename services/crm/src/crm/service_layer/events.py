"""Use cases driven by consumed events: messages, orders, shipments, surveys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from crm.domain.handles import HandleKey, InvalidHandle, normalise
from crm.service_layer import identity
from crm.service_layer.context import Ctx, provenance
from crm.service_layer.errors import CustomerNotFound
from sbcontracts.events.common import Handle
from sbcontracts.events.crm import CustomerUpdated, MessageAttributed, ProvenanceKind
from sbcontracts.events.ingest import (
    MessageReceived,
    OrderData,
    ShipmentEventReceived,
    SurveyResponded,
)

SUMMARY_CHARS = 280
RECENT_ORDERS = timedelta(days=30)  # orders named on attributed messages (routing: case's order)
PREFERENCES = ("language", "timezone", "preferred_channel", "tier")


class ErasedMeanwhile(Exception):
    """A transient refusal: retrying the event finds the tombstone and drops it."""


def handle_key(h: Handle) -> HandleKey:
    """Our key of a contracts handle (normalised again: a lenient producer cannot split a person)."""
    return normalise(h.kind.value, h.value, h.scope)


def message_entry(msg: MessageReceived) -> dict[str, Any]:
    """A message's timeline fields (the per-message and the batch path write the same)."""
    return dict(
        kind="message",
        ref=msg.message_id,
        occurred_at=msg.received_at,
        channel=msg.channel.value,
        summary=(msg.subject or msg.text)[:SUMMARY_CHARS],
    )


def attributed_message(
    msg: MessageReceived,
    customer_id: str,
    created: bool,
    profile: dict[str, Any],
    recent_order_ids: Sequence[str],
) -> MessageAttributed:
    """The message as attributed to its customer, with what routing needs to know of them."""
    return MessageAttributed(
        message=msg,
        customer_id=customer_id,
        is_new_customer=created,
        customer_language=profile.get("language") or msg.language,
        customer_tier=profile.get("tier"),
        recent_order_ids=tuple(recent_order_ids),
    )


async def on_message(ctx: Ctx, event_id: str, msg: MessageReceived) -> str | None:
    """Attribute a message to a customer (create one for a new handle); None if dropped."""
    handle = handle_key(msg.sender)
    if await ctx.repo.erased_since(handle, msg.received_at):
        return None  # an old message of an erased person must not bring the data back
    prov = provenance(ProvenanceKind.MESSAGE, msg.message_id, handle)
    cid, created = await identity.find_or_create(ctx, handle, prov)
    if created and await ctx.repo.erased_since(handle, msg.received_at):
        # The person was erased while we waited for their card's lock: roll back; the retry drops it.
        raise ErasedMeanwhile(f"{handle.kind} handle erased during attribution")
    profile, names = ({}, set()) if created else await ctx.repo.profile(cid)
    if msg.display_name and msg.display_name not in names:
        await ctx.repo.add_row(
            "attributes",
            cid,
            field="name",
            value=msg.display_name,
            source=f"{msg.channel.value}_profile",
            source_ref=msg.message_id,
            recorded_at=ctx.now,
        )
    await ctx.repo.add_timeline(cid, source_event_id=event_id, **message_entry(msg))
    orders = await ctx.repo.recent_orders({cid}, ctx.now - RECENT_ORDERS)
    attributed = attributed_message(msg, cid, created, profile, orders.get(cid, ()))
    await ctx.emit(attributed, cid)
    return cid


def _order_handles(order: OrderData) -> list[HandleKey]:
    """The order's email and phone, normalised; an unparseable one is ignored, not fatal."""
    found = []
    for kind, raw in (("email", order.customer_email), ("phone", order.customer_phone)):
        if raw:
            try:
                found.append(normalise(kind, raw))
            except InvalidHandle:
                continue
    return found


async def _order_owner(ctx: Ctx, order: OrderData, handles: list[HandleKey]) -> str:
    """The customer of an order: its handles' customers, linked (merging if they differ).

    Nothing is locked until a merge locks both cards in id order, so two orders naming the
    same two people the other way round cannot deadlock; the final card is locked last.
    """
    prov = provenance(ProvenanceKind.ORDER, order.order_id)
    existing = await ctx.repo.order(order.order_id)
    cid: str | None = None
    if existing is not None:
        cid = await identity.resolved_id(ctx, existing.customer_id)
    for h in handles:
        hp = provenance(ProvenanceKind.ORDER, order.order_id, h)
        if cid is None:
            cid, _ = await identity.find_or_create(ctx, h, hp, lock=False)
        else:
            cid = await identity.link(ctx, cid, h, hp, survivor="older")
    if cid is None:
        cid = await identity.create_customer(ctx, [], prov)
    return await identity.live_id(ctx, cid)


async def _erased(ctx: Ctx, handles: list[HandleKey], order: OrderData) -> bool:
    """Whether any of the order's handles belongs to a person erased after it was placed."""
    return any([await ctx.repo.erased_since(h, order.placed_at) for h in handles])


async def on_order(ctx: Ctx, event_id: str, order: OrderData) -> str | None:
    """Record an order on its customer's card, linking the email and phone it names."""
    handles = _order_handles(order)
    if await _erased(ctx, handles, order):
        return None
    cid = await _order_owner(ctx, order, handles)
    if await _erased(ctx, handles, order):  # erased while we waited for the card's lock
        raise ErasedMeanwhile(f"order {order.order_id}: customer erased during attribution")
    await ctx.repo.save_order(
        cid,
        order.order_id,
        status=order.status,
        placed_at=order.placed_at,
        currency=order.currency,
        total_minor=order.total_minor,
        shipment_ids=[s.shipment_id for s in order.shipments],
        updated_at=ctx.now,
    )
    await _order_attributes(ctx, cid, order)
    await ctx.repo.add_timeline(
        cid,
        source_event_id=event_id,
        kind="order",
        ref=order.order_id,
        occurred_at=order.placed_at if order.status is None else ctx.now,
        summary=f"order {order.order_id} {order.status or 'placed'}",
    )
    await ctx.repo.touch(cid, ctx.now)
    return cid


async def _order_attributes(ctx: Ctx, cid: str, order: OrderData) -> None:
    """Name, language and time zone from the order, with the order as their provenance."""
    values = {
        "name": order.customer_name,
        "language": order.customer_language,
        "timezone": order.customer_timezone,
    }
    changed = []
    for field, value in values.items():
        if value and not await ctx.repo.has_attribute(cid, field, value):
            await ctx.repo.add_row(
                "attributes",
                cid,
                field=field,
                value=value,
                source="order",
                source_ref=order.order_id,
                recorded_at=ctx.now,
            )
            changed.append(field)
    if changed:
        current = await ctx.repo.latest_attributes(cid, PREFERENCES)
        updated = CustomerUpdated(
            customer_id=cid, fields=tuple(changed), updated_at=ctx.now, **current
        )
        await ctx.emit(updated, cid)


async def on_shipment(ctx: Ctx, event_id: str, ev: ShipmentEventReceived) -> str | None:
    """Keep the shipment's latest status; a timeline entry on the order's customer if known."""
    values: dict[str, Any] = {
        "order_id": ev.order_id,
        "carrier": ev.carrier,
        "status": ev.status.value,
        "occurred_at": ev.occurred_at,
    }
    await ctx.repo.save_shipment(ev.shipment_id, **values)
    order = await ctx.repo.order(ev.order_id) if ev.order_id else None
    if order is None:
        return None
    cid = await identity.live_id(ctx, order.customer_id)
    await ctx.repo.add_timeline(
        cid,
        source_event_id=event_id,
        kind="shipment",
        ref=ev.shipment_id,
        occurred_at=ev.occurred_at,
        summary=f"{ev.carrier} {ev.status.value}"
        + (f": {ev.carrier_text}" if ev.carrier_text else ""),
    )
    return cid


async def on_survey(ctx: Ctx, event_id: str, ev: SurveyResponded) -> str | None:
    """A survey answer on the respondent's timeline (dropped if the person is unknown)."""
    cid: str | None = None
    if ev.customer_id:
        try:
            cid = await identity.live_id(ctx, ev.customer_id)
        except CustomerNotFound:
            cid = None
    if cid is None and ev.respondent is not None:
        owner = await ctx.repo.owner_of(handle_key(ev.respondent))
        cid = await identity.live_id(ctx, owner) if owner else None
    if cid is None:
        return None
    await ctx.repo.add_timeline(
        cid,
        source_event_id=event_id,
        kind="survey",
        ref=ev.response_id,
        occurred_at=ev.responded_at,
        summary=f"{ev.kind.value} {ev.score}" + (f": {ev.comment[:200]}" if ev.comment else ""),
    )
    return cid
