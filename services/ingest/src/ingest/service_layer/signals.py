"""Use cases of everything accepted once by a natural id: receipts, calls, orders, shipments, surveys."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from ingest.adapters import repository as repo
from ingest.domain.errors import InvalidHandle
from ingest.domain.handles import normalise_handle
from ingest.domain.model import Receipt
from ingest.service_layer.errors import NaturalIdReused
from ingest.service_layer.messages import (
    SOURCE,
    Context,
)
from ingest.service_layer.transactions import UowFactory, committed
from sbcontracts.envelope import CloudEvent, EventData, new_event
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


@dataclass(frozen=True)
class PreparedSignal:
    """A signal with its natural key, content hash and event, ready to store."""

    natural_key: tuple[str, str, str]
    fingerprint: str
    event: CloudEvent[Any]
    key: str


def prepare_signal(ctx: Context, signal: Signal) -> PreparedSignal:
    """The signal's event in the tenant's context, and the key it is accepted once under."""
    event = new_event(
        signal.data,
        tenant_id=ctx.tenant_id,
        source=SOURCE,
        subject=signal.aggregate_id[:256],  # CloudEvents subject bound; provider ids reach 300
        correlation_id=ctx.correlation_id,
    )
    return PreparedSignal(
        natural_key=(ctx.tenant_id, signal.kind, signal.natural_id),
        fingerprint=fingerprint(signal.data),
        event=event,
        key=partition_key(ctx.tenant_id, signal.aggregate_id),
    )


async def record_signal(
    uow: UnitOfWork, ctx: Context, signal: Signal, *, strict: bool = False
) -> bool:
    """Emit the signal's event unless its natural id was accepted before; True if emitted.

    With `strict`, the same id with other content is a 409 (a caller reusing its ids).
    """
    prepared = prepare_signal(ctx, signal)
    seen = await repo.accepted_fingerprint(
        uow.session, ctx.tenant_id, signal.kind, signal.natural_id
    )
    if seen is not None:
        if strict and seen != prepared.fingerprint:
            raise NaturalIdReused(
                f"{signal.kind} {signal.natural_id} was accepted with other content"
            )
        return False
    await repo.add_accepted(
        uow.session,
        tenant_id=ctx.tenant_id,
        kind=signal.kind,
        natural_id=signal.natural_id,
        fingerprint=prepared.fingerprint,
    )
    await uow.emit(prepared.event, key=prepared.key)
    return True


async def store_new_signals(uow: UnitOfWork, items: Sequence[PreparedSignal]) -> None:
    """Emit each signal whose natural key is new (set-based; redeliveries are skipped)."""
    first: dict[tuple[str, str, str], PreparedSignal] = {}
    for item in items:
        first.setdefault(item.natural_key, item)
    ordered = sorted(first.values(), key=lambda p: p.natural_key)
    inserted = await repo.add_new_accepted(
        uow.session, [(*p.natural_key, p.fingerprint) for p in ordered]
    )
    await uow.emit_many([(p.event, p.key) for p in first.values() if p.natural_key in inserted])


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
