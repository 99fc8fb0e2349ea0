"""Use cases of inbound messages: accept once (natural key + Idempotency-Key), read back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.adapters import repository as repo
from ingest.domain.model import InboundMessage
from ingest.domain.normalise import normalise
from ingest.service_layer.errors import IdempotencyKeyReused
from ingest.service_layer.transactions import UowFactory, committed
from sbcontracts.envelope import new_event
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


async def record_message(uow: UnitOfWork, ctx: Context, msg: InboundMessage) -> Accepted:
    """Store and emit a message unless its natural key is already known (no commit)."""
    existing = await repo.message_id_by_natural(
        uow.session, ctx.tenant_id, msg.channel.value, msg.provider_message_id
    )
    if existing:
        return Accepted(existing, created=False)
    message_id = str(uuid.uuid4())
    event_data = normalise(
        msg,
        message_id=message_id,
        received_at=datetime.now(UTC),
        region=ctx.region,
        languages=ctx.languages,
    )
    payload = event_data.model_dump(mode="json")
    await repo.add_message(
        uow.session, tenant_id=ctx.tenant_id, message_id=message_id, payload=payload
    )
    event = new_event(
        event_data,
        tenant_id=ctx.tenant_id,
        source=SOURCE,
        subject=message_id,
        correlation_id=ctx.correlation_id,
        causation_id=ctx.causation_id,
    )
    await uow.emit(event, key=partition_key(ctx.tenant_id, event_data.sender.key()))
    return Accepted(message_id, created=True)


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
