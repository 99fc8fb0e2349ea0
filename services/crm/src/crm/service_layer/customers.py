"""Use cases behind the API: create, update, link, merge, undo, and the person's privacy rights."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from crm.adapters.queries import CustomerQueries
from crm.domain.handles import HandleKey
from crm.service_layer import identity
from crm.service_layer.card import card
from crm.service_layer.context import Ctx, provenance
from crm.service_layer.errors import CannotMerge, CustomerNotFound, MergeNotFound
from sbcontracts.events.crm import Consent as ConsentState
from sbcontracts.events.crm import CustomerUpdated, ProvenanceKind


@dataclass(frozen=True)
class Consent:
    """A consent decision for a channel and purpose (service or marketing)."""

    channel: str
    purpose: str
    granted: bool


@dataclass
class Changes:
    """Attribute values, preferences and consents to record on a card."""

    attributes: dict[str, str] = field(default_factory=dict)
    consents: list[Consent] = field(default_factory=list)


async def create(ctx: Ctx, handles: list[HandleKey], changes: Changes, *, agent: str) -> str:
    """A new customer with handles no one holds yet (409 otherwise)."""
    for h in handles:
        owner = await ctx.repo.owner_of(h)
        if owner is not None:
            raise CannotMerge(f"a {h.kind} handle is already held", customer_id=owner)
    cid = await identity.create_customer(ctx, handles, provenance(ProvenanceKind.AGENT, agent))
    await record(ctx, cid, changes, agent=agent)
    return cid


async def record(ctx: Ctx, customer_id: str, changes: Changes, *, agent: str) -> str:
    """Record attributes and consents from an agent (provenance: the agent's token)."""
    cid = await identity.live_id(ctx, customer_id)
    for name, value in changes.attributes.items():
        await ctx.repo.add_row(
            "attributes",
            cid,
            field=name,
            value=value,
            source="agent",
            source_ref=agent,
            recorded_at=ctx.now,
        )
    for c in changes.consents:
        await ctx.repo.add_row(
            "consents",
            cid,
            channel=c.channel,
            purpose=c.purpose,
            granted=c.granted,
            source="agent",
            source_ref=agent,
            recorded_at=ctx.now,
        )
    await ctx.repo.touch(cid, ctx.now)
    current = await ctx.repo.latest_attributes(
        cid, ("language", "timezone", "preferred_channel", "tier")
    )
    fields = (*changes.attributes, *(f"consent.{c.channel}.{c.purpose}" for c in changes.consents))
    consents = await current_consents(ctx, cid, changes.consents) if changes.consents else ()
    event = CustomerUpdated(
        customer_id=cid, fields=tuple(fields), consents=consents, updated_at=ctx.now, **current
    )
    await ctx.emit(event, cid)
    return cid


async def current_consents(
    ctx: Ctx, customer_id: str, just_recorded: list[Consent] | None = None
) -> tuple[ConsentState, ...]:
    """The latest decision per channel and purpose (what customer.updated carries).

    Decisions recorded in this request win over stored ones of the same time, in request order.
    """
    rows = await CustomerQueries(ctx.uow.session, ctx.tenant).consents(customer_id)
    decisions = [
        (r["channel"], r["purpose"], bool(r["granted"]), r["recorded_at"]) for r in rows
    ] + [(c.channel, c.purpose, c.granted, ctx.now) for c in just_recorded or ()]
    latest: dict[tuple[str, str], ConsentState] = {}
    for channel, purpose, granted, at in decisions:  # oldest first: later replaces earlier
        latest[(channel, purpose)] = ConsentState(
            channel=channel,
            purpose=purpose,
            granted=granted,
            updated_at=at if at.tzinfo else at.replace(tzinfo=UTC),  # SQLite: naive UTC
        )
    return tuple(latest.values())


async def add_link(ctx: Ctx, customer_id: str, handle: HandleKey, *, agent: str) -> dict[str, Any]:
    """Link a handle to the customer; if another customer holds it, it merges into this one."""
    before = await identity.resolved_id(ctx, customer_id)  # no lock yet: merges lock in id order
    prov = provenance(ProvenanceKind.AGENT, agent, handle)
    merges_before = await _merge_ids(ctx, before)
    cid = await identity.link(ctx, before, handle, prov, survivor="target")
    new = sorted(set(await _merge_ids(ctx, cid)) - set(merges_before))
    return {"customer_id": cid, "merge_id": new[0] if new else None}


async def _merge_ids(ctx: Ctx, cid: str) -> list[str]:
    rows = await CustomerQueries(ctx.uow.session, ctx.tenant).merges_of([cid])
    return [str(r["id"]) for r in rows]


async def merge(ctx: Ctx, survivor_id: str, other_id: str, *, agent: str) -> dict[str, Any]:
    """An agent merges `other_id` into `survivor_id` (409 for itself or an already-merged one)."""
    for cid in (survivor_id, other_id):
        if await ctx.repo.customer(cid) is None:
            raise CustomerNotFound(f"no customer {cid}")
    m = await identity.merge(ctx, survivor_id, other_id, provenance(ProvenanceKind.AGENT, agent))
    return await merge_view(ctx, m.id)


async def undo(ctx: Ctx, merge_id: str, *, agent: str) -> dict[str, Any]:
    """Undo a merge; both customers get their own handles, attributes and timeline back."""
    await identity.undo(ctx, merge_id, provenance(ProvenanceKind.AGENT, agent))
    return await merge_view(ctx, merge_id)


async def merge_view(ctx: Ctx, merge_id: str) -> dict[str, Any]:
    """A merge record as the API shows it."""
    row = await ctx.repo.merge_row(merge_id)
    if row is None:
        raise MergeNotFound(f"no merge {merge_id}")
    return {
        "id": row.id,
        "survivor_id": row.survivor_id,
        "merged_id": row.merged_id,
        "provenance": row.provenance,
        "moved": row.moved,
        "created_at": row.created_at,
        "undone_at": row.undone_at,
        "undo_provenance": row.undo_provenance,
    }


async def view(ctx: Ctx, customer_id: str) -> dict[str, Any]:
    """The card (re-exported for the routes)."""
    return await card(ctx, customer_id)
