"""Idempotent event consumers: decode, skip what the inbox has seen, apply, commit; per batch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sbcontracts.catalog import InvalidEvent, decode
from sbcontracts.envelope import CloudEvent
from sbkit.bus.delivery import record_span
from sbkit.bus.ports import BatchHandler, Handler, PoisonMessage, Record
from sbkit.db.uow import UnitOfWork

EventHandler = Callable[[UnitOfWork, CloudEvent[Any]], Awaitable[None]]
UowFactory = Callable[[], UnitOfWork]


def _decode(record: Record) -> CloudEvent[Any]:
    try:
        return decode(record.value)
    except InvalidEvent as exc:
        raise PoisonMessage(str(exc)) from exc


def record_handler(uows: UowFactory, *, consumer: str, handle: EventHandler) -> Handler:
    """One record, one transaction (also the fallback when a batch failed)."""

    async def handler(record: Record) -> None:
        event = _decode(record)
        async with uows() as uow:
            if await uow.seen(consumer=consumer, event_id=event.id):
                return
            await handle(uow, event)
            await uow.commit()

    return handler


def batch_handler(uows: UowFactory, *, consumer: str, handle: EventHandler) -> BatchHandler:
    """Many records, one transaction: one inbox statement, then the new events in order.

    Any failure (an undecodable record, a poison event, a deadlock) rolls the whole batch back
    and raises, so the bus handles its records again one by one; the offsets are committed
    only after this returns.
    """

    async def handler(records: Sequence[Record]) -> None:
        events = [_decode(r) for r in records]
        async with uows() as uow:
            fresh = await uow.unseen(consumer=consumer, event_ids=[e.id for e in events])
            for record, event in zip(records, events, strict=True):
                if event.id not in fresh:
                    continue  # applied by an earlier batch
                fresh.discard(event.id)  # a second copy later in this batch is skipped too
                with record_span(record):
                    await handle(uow, event)
            await uow.commit()

    return handler
