"""Shipment tracking use cases: orders, scans, and the stall and cut-off timers that fire with no event."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from notifier.domain import delays
from notifier.domain.episodes import on_recovery, on_signal
from notifier.domain.shipments import Scan, Shipment, apply
from notifier.service_layer import notify
from notifier.service_layer.context import Ctx
from sbcontracts.events.ingest import OrderData, ShipmentEventReceived

STALL = "stall"
CUTOFF = "cutoff"


def shipment_ids(data: object) -> list[str]:
    """The shipments a commerce event touches (to read a batch's shipments at once)."""
    if isinstance(data, OrderData):
        return [ref.shipment_id for ref in data.shipments]
    if isinstance(data, ShipmentEventReceived):
        return [data.shipment_id]
    return []


async def preload(ctx: Ctx, events: Iterable[object]) -> None:
    """Read the shipments and orders these events of `ctx`'s tenant touch (and the shipments'
    orders and episodes) at once; the use cases then find them in the transaction instead of
    reading one each."""
    events = list(events)
    await ctx.repo.preload(
        (i for data in events for i in shipment_ids(data)),
        (data.order_id for data in events if isinstance(data, OrderData)),
    )


async def on_order(ctx: Ctx, order: OrderData) -> None:
    """Remember the order's contacts and promise; start tracking its shipments and cut-offs.
    An order whose person was erased keeps no contact, however often its events come again."""
    known = await ctx.repo.order(order.order_id)
    erased = known is not None and known.contacts_erased
    await ctx.repo.put_order(
        order.order_id,
        customer_email=None if erased else order.customer_email,
        customer_phone=None if erased else order.customer_phone,
        language=order.customer_language,
        timezone=order.customer_timezone,
        promised_to=order.promised_to,
        contacts_erased=erased,
    )
    for ref in order.shipments:
        known = await ctx.repo.shipment(ref.shipment_id)
        ship = known or Shipment(ref.shipment_id, ref.carrier, order_id=order.order_id)
        ship = replace(
            ship,
            order_id=order.order_id,
            dispatch_by=ref.dispatch_by,
            promised_to=order.promised_to,
        )
        await ctx.repo.put_shipment(ship, tracking_number=ref.tracking_number)
        if ref.dispatch_by and not ship.dispatched and not ship.terminal:
            await ctx.notes.arm(CUTOFF, ship.shipment_id, due_at=ref.dispatch_by)


async def on_scan(ctx: Ctx, event: ShipmentEventReceived) -> None:
    """Apply a carrier scan; a fresh one may reveal a delay, end an episode and re-arm the stall timer."""
    known = await ctx.repo.shipment(event.shipment_id) or Shipment(
        event.shipment_id, event.carrier, order_id=event.order_id
    )
    scan = Scan(
        event.status.value,
        event.occurred_at,
        carrier_code=event.carrier_code,
        is_delay=event.is_delay,
        estimate_to=event.estimate_to or event.estimate_from,
    )
    out = apply(known, scan, now=ctx.now)
    if not out.fresh:
        return
    ship = out.shipment
    if out.gap is not None:
        await ctx.repo.add_gap(ship.carrier, out.lane, out.gap)
    await ctx.repo.put_shipment(ship, tracking_number=event.tracking_number)
    if ship.dispatched and not known.dispatched:
        await ctx.notes.disarm(CUTOFF, ship.shipment_id)
    signal = delays.scan_signal(ship, scan)
    if signal:
        await raise_alert(ctx, ship, signal)
    elif ship.terminal or (ship.estimate_to and not delays.estimate_late(ship)):
        await _recover(ctx, ship)
    await arm_stall(ctx, ship)


async def arm_stall(ctx: Ctx, ship: Shipment) -> None:
    """Set the stall timer from the learned (or default) threshold of this carrier and lane."""
    if ship.terminal:
        await ctx.notes.disarm(STALL, ship.shipment_id)
        return
    policy = await ctx.policy()
    stats = await ctx.repo.gaps(ship.carrier, ship.lane)
    threshold = delays.stall_threshold(
        stats,
        default=policy.stall_default,
        min_samples=policy.stall_min_samples,
        factor=policy.stall_factor,
        floor=policy.stall_floor,
    )
    due = delays.stall_due(ship, threshold)
    if due is not None:
        await ctx.notes.arm(STALL, ship.shipment_id, due_at=due, armed_for=ship.last_scan_at)


async def fire(ctx: Ctx, *, kind: str, ref: str, armed_for: datetime | None) -> None:
    """A stall or cut-off timer is due: alert if the condition still holds."""
    ship = await ctx.repo.shipment(ref)
    if ship is None:
        return
    if kind == STALL and delays.stalled(ship, armed_for=armed_for):
        await raise_alert(ctx, ship, delays.STALLED)
    elif kind == CUTOFF and delays.missed_cutoff(ship, now=ctx.now):
        await raise_alert(ctx, ship, delays.MISSED_CUTOFF)


async def raise_alert(ctx: Ctx, ship: Shipment, reason: str) -> None:
    """A lateness signal: at most one alert per episode unless the estimate worsens enough."""
    policy = await ctx.policy()
    episode = await ctx.repo.episode(ship.shipment_id)
    episode, alert = on_signal(
        episode,
        shipment_id=ship.shipment_id,
        reason=reason,
        estimate=ship.estimate_to,
        margin=policy.estimate_margin,
    )
    if alert is None:
        return
    await ctx.repo.put_episode(ship.shipment_id, episode, now=ctx.now)
    await notify.create(ctx, ship, alert, policy=policy)


async def _recover(ctx: Ctx, ship: Shipment) -> None:
    episode = await ctx.repo.episode(ship.shipment_id)
    if episode.open:
        await ctx.repo.put_episode(ship.shipment_id, on_recovery(episode), now=ctx.now)
