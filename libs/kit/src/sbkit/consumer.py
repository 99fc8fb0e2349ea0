"""Idempotent event consumers: decode, skip what the inbox has seen, apply, commit; per batch."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sbcontracts.catalog import InvalidEvent, decode
from sbcontracts.envelope import CloudEvent
from sbkit.bus.delivery import record_span, records_span
from sbkit.bus.ports import BatchHandler, Handler, PoisonMessage, Record
from sbkit.db.uow import UnitOfWork

EventHandler = Callable[[UnitOfWork, CloudEvent[Any]], Awaitable[None]]
BatchEventHandler = Callable[[UnitOfWork, Sequence[CloudEvent[Any]]], Awaitable[None]]
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


def batch_handler(
    uows: UowFactory,
    *,
    consumer: str,
    handle: EventHandler,
    handle_batch: BatchEventHandler | None = None,
) -> BatchHandler:
    """Many records, one transaction: one inbox statement, then the new events in order
    (through `handle_batch` at once when given, else `handle` one by one).

    Any failure (an undecodable record, a poison event, a deadlock) rolls the whole batch back
    and raises, so the bus handles its records again one by one; the offsets are committed
    only after this returns.
    """

    async def handler(records: Sequence[Record]) -> None:
        events = [_decode(r) for r in records]
        async with uows() as uow:
            fresh = await uow.unseen(consumer=consumer, event_ids=[e.id for e in events])
            todo: list[tuple[Record, CloudEvent[Any]]] = []
            for record, event in zip(records, events, strict=True):
                if event.id in fresh:  # else applied by an earlier batch
                    fresh.discard(event.id)  # a second copy later in this batch is skipped too
                    todo.append((record, event))
            if handle_batch is not None:
                span = records_span([r for r, _ in todo]) if todo else contextlib.nullcontext()
                with span:
                    await handle_batch(uow, [event for _, event in todo])
            else:
                for record, event in todo:
                    with record_span(record):
                        await handle(uow, event)
            await uow.commit()

    return handler
