"""Attributing a batch of messages at once: `events.on_message`'s rules, set at a time.

One query finds the tombstones, one locks the customers holding the senders' handles (in id
order, as merges do, so batches and merges cannot deadlock), one creates the new customers;
names, timeline entries and events are written in one statement each. Anything this path does
not handle itself (a handle taken meanwhile by another transaction, an erasure racing the
batch) raises, and the kit replays the batch one message per transaction through
`on_message`, which resolves such races.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crm.domain.handles import HandleKey
from crm.domain.model import Status
from crm.service_layer import identity
from crm.service_layer.context import Ctx, provenance, to_handle
from crm.service_layer.events import (
    RECENT_ORDERS,
    ErasedMeanwhile,
    attributed_message,
    handle_key,
    message_entry,
)
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.crm import CustomerCreated, ProvenanceKind
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.topics import partition_key
from sbkit.db.uow import UnitOfWork


class HandleTakenMeanwhile(Exception):
    """Another transaction gave one of the batch's new handles a customer first (transient)."""


Events = list[tuple[CloudEvent[Any], str]]  # (event, partition key) pairs for the outbox


@dataclass
class _Sender:
    """What the batch knows about one sender handle."""

    customer_id: str
    created: bool
    profile: tuple[dict[str, str], set[str]]


async def on_messages(
    uow: UnitOfWork, events: Sequence[CloudEvent[Any]], *, tombstone_secret: bytes
) -> None:
    """Attribute message.received events (in order), tenant by tenant, in one transaction."""
    by_tenant: dict[str, list[CloudEvent[Any]]] = {}
    for e in events:
        if isinstance(e.data, MessageReceived):
            by_tenant.setdefault(e.tenantid, []).append(e)
    for tenant, mine in by_tenant.items():
        await _attribute(Ctx(uow, tenant, tombstone_secret=tombstone_secret), mine)


async def _attribute(ctx: Ctx, events: list[CloudEvent[Any]]) -> None:
    handles = [handle_key(e.data.sender) for e in events]
    erased = await ctx.repo.erased_at_of(set(handles))
    kept = [
        (e, h)
        for e, h in zip(events, handles, strict=True)
        if h not in erased or erased[h] < e.data.received_at
    ]  # an old message of an erased person must not bring the data back
    senders, out = await _senders(ctx, kept, erased)  # out: customer.created of new handles
    since = ctx.now - RECENT_ORDERS
    orders = await ctx.repo.recent_orders({s.customer_id for s in senders.values()}, since)
    attributes: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    for e, h in kept:
        msg: MessageReceived = e.data
        s = senders[h]
        latest, names = s.profile
        if msg.display_name and msg.display_name not in names:
            names.add(msg.display_name)
            attributes.append(
                dict(
                    customer_id=s.customer_id,
                    field="name",
                    value=msg.display_name,
                    source=f"{msg.channel.value}_profile",
                    source_ref=msg.message_id,
                    recorded_at=ctx.now,
                )
            )
        timeline.append(dict(customer_id=s.customer_id, source_event_id=e.id, **message_entry(msg)))
        attributed = attributed_message(
            msg, s.customer_id, s.created, latest, orders.get(s.customer_id, ())
        )
        out.append(_event(ctx.tenant, e, attributed, s.customer_id))
        s.created = False  # the sender's next message finds the customer
    await ctx.repo.add_rows("attributes", attributes)
    await ctx.repo.add_timelines(timeline)
    await ctx.uow.emit_many(out)  # created before attributed: the outbox keeps their order


async def _senders(
    ctx: Ctx, kept: list[tuple[CloudEvent[Any], HandleKey]], erased: dict[HandleKey, datetime]
) -> tuple[dict[HandleKey, _Sender], Events]:
    """The live customer of every sender (locked), creating customers for new handles; with
    the customer.created events of those."""
    distinct = list(dict.fromkeys(h for _, h in kept))
    rows = await ctx.repo.owner_rows(distinct)
    found: dict[HandleKey, str] = {}
    for h, row in rows.items():
        found[h] = row.id if row.status == Status.ACTIVE else await identity.live_id(ctx, row.id)
    profiles = await ctx.repo.profiles(sorted(set(found.values())))
    senders = {h: _Sender(cid, False, profiles[cid]) for h, cid in found.items()}
    new = [h for h in distinct if h not in found]
    if not new:
        return senders, []
    created, events = await _create(ctx, new, kept, erased)
    return {**senders, **created}, events


async def _create(
    ctx: Ctx,
    new: list[HandleKey],
    kept: list[tuple[CloudEvent[Any], HandleKey]],
    erased: dict[HandleKey, datetime],
) -> tuple[dict[HandleKey, _Sender], Events]:
    """A customer per new handle, created by the handle's first message (its provenance)."""
    first = {h: e for e, h in reversed(kept)}
    refs = [first[h].data.message_id for h in new]
    created = await ctx.repo.add_customers_holding(
        new, refs, source=ProvenanceKind.MESSAGE, now=ctx.now
    )
    if created is None:
        raise HandleTakenMeanwhile(f"{len(new)} new handles: one was taken meanwhile")
    now_erased = await ctx.repo.erased_at_of(set(new))
    if any(erased.get(h) != at for h, at in now_erased.items()):
        # erased while we waited for a lock: the per-message replay drops those messages
        raise ErasedMeanwhile("a new handle was erased during attribution")
    out: Events = []
    for h, ref in zip(new, refs, strict=True):
        cid = created[h]
        prov = provenance(ProvenanceKind.MESSAGE, ref, h)
        data = CustomerCreated(
            customer_id=cid, handles=(to_handle(h),), provenance=prov, created_at=ctx.now
        )
        out.append(_event(ctx.tenant, first[h], data, cid))
    return {h: _Sender(created[h], True, ({}, set())) for h in new}, out


def _event(
    tenant: str, cause: CloudEvent[Any], data: EventData, customer_id: str
) -> tuple[CloudEvent[Any], str]:
    """An event about a customer caused by a message, with the key that orders it."""
    event = new_event(
        data,
        tenant_id=tenant,
        source="crm",
        subject=customer_id,
        correlation_id=cause.correlationid,
        causation_id=cause.id,
    )
    return event, partition_key(tenant, customer_id)
