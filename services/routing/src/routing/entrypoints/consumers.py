"""Kafka consumers of routing: parse the event, call its use case (the runtime handles inbox and DLQ)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from routing.service_layer import inbound, merge, notes
from routing.service_layer.context import Ctx, Knobs, batched
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.crm import (
    CustomerErased,
    CustomerMerged,
    CustomerUnmerged,
    MessageAttributed,
)
from sbcontracts.events.ingest import CallAbandoned
from sbcontracts.events.notifier import NotificationSuppressed
from sbcontracts.topics import CALLS, CUSTOMERS, MESSAGES_ATTRIBUTED, NOTIFICATIONS
from sbkit.bus.ports import PoisonMessage
from sbkit.consumer import BatchEventHandler
from sbkit.db.uow import UnitOfWork
from sbkit.runtime import EventHandler, ServiceRuntime


def _ctx_for(
    knobs: Knobs, clock: Callable[[], datetime] | None = None
) -> Callable[[UnitOfWork, CloudEvent[Any]], Ctx]:
    def ctx(uow: UnitOfWork, event: CloudEvent[Any]) -> Ctx:
        if clock is None:
            return Ctx(uow, event.tenantid, event.correlationid, event.id, knobs=knobs)
        return Ctx(uow, event.tenantid, event.correlationid, event.id, clock(), knobs)

    return ctx


def batch_handlers(
    knobs: Knobs, clock: Callable[[], datetime] | None = None
) -> dict[str, BatchEventHandler]:
    """Set-at-a-time handlers of consumer batches, by consumer name (same effect as per event);
    `clock` (tests with a virtual clock) gives the use cases' time, else the wall clock."""
    ctx = _ctx_for(knobs, clock)

    async def messages_batch(uow: UnitOfWork, events: Sequence[CloudEvent[Any]]) -> None:
        """A polled batch of messages in one transaction: the customers' facts read once per
        tenant, the new cases decided together (`inbound.decide_openings`), every event written
        with one outbox statement; in order, as `messages` would, but a new case is decided and
        written after the batch's other messages unless a later one is its customer's."""
        mine = [e for e in events if isinstance(e.data, MessageAttributed)]
        known: dict[str, inbound.Known] = {}
        async with batched(uow):
            for event in mine:
                if event.tenantid not in known:
                    batch = [e.data for e in mine if e.tenantid == event.tenantid]
                    known[event.tenantid] = await inbound.prefetch(ctx(uow, event), batch)
                await inbound.on_message(ctx(uow, event), event.data, known=known[event.tenantid])
            for facts in known.values():  # the new cases' decisions, together
                await inbound.decide_openings(facts)

    return {"messages": messages_batch}


def handlers(knobs: Knobs) -> dict[str, EventHandler]:
    """The consumers by name, bound to the service's knobs."""
    ctx = _ctx_for(knobs)

    async def messages(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.messages.attributed.v1: the message joins, reopens or opens a case."""
        if isinstance(event.data, MessageAttributed):
            async with batched(uow):
                await inbound.on_message(ctx(uow, event), event.data)

    async def calls(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.calls.v1: an abandoned call becomes a callback case."""
        if isinstance(event.data, CallAbandoned):
            if event.data.caller is None:
                raise PoisonMessage("abandoned call without a caller: nobody to call back")
            await inbound.on_call_abandoned(ctx(uow, event), event.data)

    async def customers(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.customers.v1: merges fold cases, undos split them, erasure scrubs them."""
        if isinstance(event.data, CustomerMerged):
            await merge.on_merged(ctx(uow, event), event.data)
        elif isinstance(event.data, CustomerUnmerged):
            await merge.on_unmerged(ctx(uow, event), event.data)
        elif isinstance(event.data, CustomerErased):
            await merge.on_erased(ctx(uow, event), event.data)

    async def notifications(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.notifications.v1: a suppressed alert's note becomes an internal note on its case."""
        if isinstance(event.data, NotificationSuppressed):
            await notes.on_suppressed(ctx(uow, event), event.data)

    return {
        "messages": messages,
        "calls": calls,
        "customers": customers,
        "notifications": notifications,
    }


def register(
    runtime: ServiceRuntime, knobs: Knobs, rename: Mapping[str, str] | None = None
) -> None:
    """Subscribe routing's consumers (`rename` maps topic names, for isolated tests)."""
    names = dict(rename or {})
    by_name, batches = handlers(knobs), batch_handlers(knobs)
    for consumer, topic in (
        ("messages", MESSAGES_ATTRIBUTED.name),
        ("calls", CALLS.name),
        ("customers", CUSTOMERS.name),
        ("notifications", NOTIFICATIONS.name),
    ):
        runtime.consume(
            consumer,
            [names.get(topic, topic)],
            by_name[consumer],
            handle_batch=batches.get(consumer),
        )
