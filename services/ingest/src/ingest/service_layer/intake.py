"""Webhook deliveries: normalised before any database work, then stored through a group commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from ingest.adapters import repository as repo
from ingest.domain.errors import ParseError, SignatureError
from ingest.domain.model import Batch, InboundMessage
from ingest.service_layer.group_commit import GroupCommit
from ingest.service_layer.messages import Accepted, Context, Prepared, prepare, store_messages
from ingest.service_layer.signals import (
    PreparedSignal,
    Signal,
    prepare_signal,
    receipt_signal,
    store_new_signals,
)
from ingest.service_layer.transactions import UowFactory, committed
from sbkit.db.uow import UnitOfWork

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Intake:
    """What one webhook delivery stores: its prepared messages and its provider signals."""

    messages: list[Prepared]
    signals: list[PreparedSignal]


def prepare_or_skip(ctx: Context, msg: InboundMessage) -> Prepared | None:
    """Normalise one message of a provider batch; an unusable one is skipped, not the whole batch.

    Providers retry a refused delivery for days, so one bad sender must not block its neighbours.
    """
    try:
        return prepare(ctx, msg)
    except ParseError as exc:
        log.warning("ingest.message_skipped", provider=msg.provider, reason=str(exc)[:100])
        return None


def intake_of(ctx: Context, batch: Batch) -> Intake:
    """Normalise a delivery before any database work (so a group never fails on one request)."""
    prepared = [p for p in (prepare_or_skip(ctx, m) for m in batch.messages) if p is not None]
    signals = [prepare_signal(ctx, receipt_signal(r, ctx.region)) for r in batch.receipts]
    return Intake(prepared, signals)


async def store_intakes(uow: UnitOfWork, intakes: Sequence[Intake]) -> list[list[Accepted]]:
    """Store the messages and signals of many deliveries at once; each delivery's outcomes."""
    accepted = await store_messages(uow, [p for i in intakes for p in i.messages])
    await store_new_signals(uow, [s for i in intakes for s in i.signals])
    results, at = [], 0
    for intake in intakes:
        results.append(accepted[at : at + len(intake.messages)])
        at += len(intake.messages)
    return results


IntakeGroup = GroupCommit[Intake, list[Accepted]]


def intake_group(new_uow: UowFactory, *, in_flight: int) -> IntakeGroup:
    """The group commit every webhook delivery goes through."""
    return GroupCommit(new_uow, store_intakes, in_flight=in_flight)


async def accept_batch(group: IntakeGroup, ctx: Context, batch: Batch) -> list[Accepted]:
    """A webhook delivery: all its messages and receipts, atomically and each once."""
    intake = intake_of(ctx, batch)
    size = len(intake.messages) + len(intake.signals)
    return await group.submit(intake, size=max(size, 1))


async def accept_signals(group: IntakeGroup, ctx: Context, signals: list[Signal]) -> None:
    """Provider signals (redeliveries are normal, so never strict), each emitted once."""
    prepared = [prepare_signal(ctx, s) for s in signals]
    await group.submit(Intake([], prepared), size=max(len(prepared), 1))


async def record_or_skip(uow: UnitOfWork, ctx: Context, msg: InboundMessage) -> Accepted | None:
    """Record one message of a provider batch in `uow`, or skip it if unusable."""
    prepared = prepare_or_skip(ctx, msg)
    return (await store_messages(uow, [prepared]))[0] if prepared else None


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
