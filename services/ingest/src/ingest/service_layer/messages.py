"""Use cases of inbound messages: accept once (natural key + Idempotency-Key), read back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.adapters import repository as repo
from ingest.domain.model import InboundMessage
from ingest.domain.normalise import normalise
from ingest.service_layer.errors import IdempotencyKeyReused
from ingest.service_layer.transactions import UowFactory, committed
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.topics import partition_key
from sbkit.db.uow import UnitOfWork
from sbkit.problems import NotFound

SOURCE = "ingest"


@dataclass(frozen=True)
class Context:
    """Who the messages are for and how to normalise them."""

    tenant_id: str
    region: str | None
    languages: frozenset[str]
    correlation_id: str | None = None
    causation_id: str | None = None


@dataclass(frozen=True)
class Accepted:
    """The outcome for one message: our id, and whether this call created it."""

    message_id: str
    created: bool


@dataclass(frozen=True)
class Prepared:
    """A normalised message with its event, ready to store (normalised before any database work)."""

    tenant_id: str
    message_id: str
    natural_key: tuple[str, str, str]
    payload: dict[str, Any]
    event: CloudEvent[Any]
    key: str


def prepare(ctx: Context, msg: InboundMessage) -> Prepared:
    """Normalise a message and build its event (ParseError for an unusable sender)."""
    message_id = str(uuid.uuid4())
    event_data = normalise(
        msg,
        message_id=message_id,
        received_at=datetime.now(UTC),
        region=ctx.region,
        languages=ctx.languages,
    )
    event = new_event(
        event_data,
        tenant_id=ctx.tenant_id,
        source=SOURCE,
        subject=message_id,
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
    )
    return Prepared(
        tenant_id=ctx.tenant_id,
        message_id=message_id,
        natural_key=(ctx.tenant_id, msg.channel.value, msg.provider_message_id),
        payload=event_data.model_dump(mode="json"),
        event=event,
        key=partition_key(ctx.tenant_id, event_data.sender.key()),
    )


async def store_messages(uow: UnitOfWork, items: Sequence[Prepared]) -> list[Accepted]:
    """Store and emit each message whose natural key is new, in set-based statements (no commit).

    A known key (stored before, by a concurrent transaction, or earlier in `items`) answers the
    stored id with created=False. Rows are inserted in natural-key order, so two transactions
    inserting overlapping keys lock them in the same order (no deadlock); events are emitted in
    arrival order (a sender's messages stay in order on their partition).
    """
    first: dict[tuple[str, str, str], Prepared] = {}
    for item in items:
        first.setdefault(item.natural_key, item)
    ordered = sorted(first.values(), key=lambda p: p.natural_key)
    inserted = await repo.add_new_messages(
        uow.session, [(p.tenant_id, p.message_id, p.payload) for p in ordered]
    )
    known = [p.natural_key for p in ordered if p.message_id not in inserted]
    existing = await repo.message_ids_by_natural(uow.session, known) if known else {}
    await uow.emit_many([(p.event, p.key) for p in first.values() if p.message_id in inserted])
    results = []
    for item in items:
        winner = first[item.natural_key]
        created = item is winner and winner.message_id in inserted
        results.append(Accepted(existing.get(item.natural_key, winner.message_id), created=created))
    return results


async def record_message(uow: UnitOfWork, ctx: Context, msg: InboundMessage) -> Accepted:
    """Store and emit one message unless its natural key is already known (no commit)."""
    return (await store_messages(uow, [prepare(ctx, msg)]))[0]


async def accept_messages(
    new_uow: UowFactory, ctx: Context, batch: list[InboundMessage]
) -> list[Accepted]:
    """Accept a batch atomically: every message is stored and emitted once, or none is."""

    async def work(uow: UnitOfWork) -> list[Accepted]:
        return [await record_message(uow, ctx, msg) for msg in batch]

    return await committed(new_uow, work)


async def accept_api_message(
    new_uow: UowFactory,
    ctx: Context,
    msg: InboundMessage,
    *,
    idempotency: tuple[str, str] | None,
) -> Accepted:
    """Accept a message of the generic API, also idempotent by (Idempotency-Key, body hash)."""

    async def work(uow: UnitOfWork) -> Accepted:
        if idempotency:
            key, request_hash = idempotency
            seen = await repo.idempotency_key(uow.session, ctx.tenant_id, key)
            if seen:
                if seen[0] != request_hash:
                    raise IdempotencyKeyReused("this Idempotency-Key was used for another body")
                return Accepted(seen[1], created=False)
        accepted = await record_message(uow, ctx, msg)
        if idempotency:
            await repo.add_idempotency_key(
                uow.session,
                tenant_id=ctx.tenant_id,
                key=idempotency[0],
                request_hash=idempotency[1],
                message_id=accepted.message_id,
            )
        return accepted

    return await committed(new_uow, work)


async def get_message(new_uow: UowFactory, tenant_id: str, message_id: str) -> dict[str, Any]:
    """The normalised message of this tenant (other tenants' ids are not found)."""
    async with new_uow() as uow:
        payload = await repo.message_by_id(uow.session, tenant_id, message_id)
    if payload is None:
        raise NotFound("no such message")
    return dict(payload)
