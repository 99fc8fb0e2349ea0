"""Use cases of everything accepted once by a natural id: receipts, calls, orders, shipments, surveys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import structlog

from ingest.adapters import repository as repo
from ingest.domain.errors import InvalidHandle, ParseError, SignatureError
from ingest.domain.handles import normalise_handle
from ingest.domain.model import Batch, InboundMessage, Receipt
from ingest.service_layer.errors import NaturalIdReused
from ingest.service_layer.messages import SOURCE, Accepted, Context, record_message
from ingest.service_layer.transactions import UowFactory, committed
from sbcontracts.envelope import EventData, new_event
from sbcontracts.events.ingest import DeliveryReceiptReceived
from sbcontracts.topics import partition_key
from sbkit.db.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Signal:
    """An event to emit once per (kind, natural id) of a tenant."""

    kind: str
    natural_id: str
    data: EventData
    aggregate_id: str


def fingerprint(data: EventData) -> str:
    """A content hash telling a true redelivery from a conflicting reuse of the same id."""
    return hashlib.sha256(data.model_dump_json(exclude={"occurred_at"}).encode()).hexdigest()


async def record_signal(
    uow: UnitOfWork, ctx: Context, signal: Signal, *, strict: bool = False
) -> bool:
    """Emit the signal's event unless its natural id was accepted before; True if emitted.

    With `strict`, the same id with other content is a 409 (a caller reusing its ids).
    """
    digest = fingerprint(signal.data)
    seen = await repo.accepted_fingerprint(
        uow.session, ctx.tenant_id, signal.kind, signal.natural_id
    )
    if seen is not None:
        if strict and seen != digest:
            raise NaturalIdReused(
                f"{signal.kind} {signal.natural_id} was accepted with other content"
            )
        return False
    await repo.add_accepted(
        uow.session,
        tenant_id=ctx.tenant_id,
        kind=signal.kind,
        natural_id=signal.natural_id,
        fingerprint=digest,
    )
    event = new_event(
        signal.data,
        tenant_id=ctx.tenant_id,
        source=SOURCE,
        subject=signal.aggregate_id,
        correlation_id=ctx.correlation_id,
    )
    await uow.emit(event, key=partition_key(ctx.tenant_id, signal.aggregate_id))
    return True


async def accept_signal(new_uow: UowFactory, ctx: Context, signal: Signal) -> bool:
    """Accept one signal in its own transaction; True if this call emitted it."""

    async def work(uow: UnitOfWork) -> bool:
        return await record_signal(uow, ctx, signal, strict=True)

    return await committed(new_uow, work)


def receipt_signal(receipt: Receipt, region: str | None) -> Signal:
    """The once-only receipt event of a provider status (one per message and state)."""
    recipient = None
    if receipt.recipient:
        try:
            recipient = normalise_handle(receipt.recipient, region=region)
        except InvalidHandle:
            recipient = None
    data = DeliveryReceiptReceived(
        channel=receipt.channel,
        provider=receipt.provider,
        provider_message_id=receipt.provider_message_id,
        status=receipt.status,
        occurred_at=receipt.occurred_at,
        recipient=recipient,
        error_code=receipt.error_code,
        error_text=receipt.error_text,
    )
    natural = f"{receipt.provider}:{receipt.provider_message_id}:{receipt.status.value}"
    return Signal("receipt", natural[:400], data, receipt.provider_message_id)


async def record_or_skip(uow: UnitOfWork, ctx: Context, msg: InboundMessage) -> Accepted | None:
    """Record one message of a provider batch; an unusable one is skipped, not the whole batch.

    Providers retry a refused delivery for days, so one bad sender must not block its neighbours.
    """
    try:
        return await record_message(uow, ctx, msg)
    except ParseError as exc:
        log.warning("ingest.message_skipped", provider=msg.provider, reason=str(exc)[:100])
        return None


async def accept_batch(new_uow: UowFactory, ctx: Context, batch: Batch) -> list[Accepted]:
    """A webhook delivery: all its messages and receipts, atomically and each once."""

    async def work(uow: UnitOfWork) -> list[Accepted]:
        found = [await record_or_skip(uow, ctx, msg) for msg in batch.messages]
        accepted = [a for a in found if a is not None]
        for receipt in batch.receipts:
            await record_signal(uow, ctx, receipt_signal(receipt, ctx.region))
        return accepted

    return await committed(new_uow, work)


async def accept_signals(new_uow: UowFactory, ctx: Context, signals: list[Signal]) -> int:
    """Provider signals (redeliveries are normal, so never strict); how many were new."""

    async def work(uow: UnitOfWork) -> int:
        return sum([await record_signal(uow, ctx, s) for s in signals])

    return await committed(new_uow, work)


async def accept_with_nonce(
    new_uow: UowFactory, ctx: Context, batch: Batch, *, nonce: str, body_hash: str
) -> list[Accepted]:
    """Accept a batch whose signature covers only a nonce: a reused nonce must bring the same body."""

    async def work(uow: UnitOfWork) -> list[Accepted]:
        seen = await repo.accepted_fingerprint(uow.session, ctx.tenant_id, "nonce", nonce)
        if seen is not None and seen != body_hash:
            raise SignatureError("signature token replayed with another body")
        if seen is None:
            await repo.add_accepted(
                uow.session,
                tenant_id=ctx.tenant_id,
                kind="nonce",
                natural_id=nonce[:400],
                fingerprint=body_hash,
            )
        found = [await record_or_skip(uow, ctx, msg) for msg in batch.messages]
        return [a for a in found if a is not None]

    return await committed(new_uow, work)
