"""Kafka consumers of notifier: parse the event, call its use case (the runtime handles inbox and DLQ)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from notifier.service_layer import customers, delivery, notify, tracking
from notifier.service_layer.context import Batch, Ctx
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.ingest import (
    DeliveryReceiptReceived,
    MessageReceived,
    OrderData,
    ShipmentEventReceived,
)
from sbcontracts.topics import COMMERCE, CUSTOMERS, MESSAGES, RECEIPTS, TICKETS
from sbkit.bus.ports import PoisonMessage
from sbkit.db.uow import UnitOfWork
from sbkit.runtime import BatchEventHandler, EventHandler, ServiceRuntime

Clock = Callable[[], datetime]


def handlers(
    clock: Clock, tracking_url: str
) -> tuple[dict[str, EventHandler], dict[str, BatchEventHandler]]:
    """The consumers by name, bound to the service's clock, and those with a set-at-a-time batch
    path (same effect as the per-event handler applied to each event in order)."""

    def ctx(uow: UnitOfWork, event: CloudEvent[Any], batch: Batch | None = None) -> Ctx:
        return Ctx(
            uow, event.tenantid, clock(), tracking_url,
            correlation_id=event.correlationid, causation_id=event.id, batch=batch,
        )  # fmt: skip

    async def commerce(uow: UnitOfWork, event: CloudEvent[Any], batch: Batch | None = None) -> None:
        """sb.commerce.v1: orders and carrier scans."""
        if isinstance(event.data, OrderData):
            await tracking.on_order(ctx(uow, event, batch), event.data)
        elif isinstance(event.data, ShipmentEventReceived):
            if event.data.estimate_to and event.data.estimate_to.year < 2000:
                raise PoisonMessage("estimate before 2000: a carrier placeholder, not a date")
            await tracking.on_scan(ctx(uow, event, batch), event.data)

    async def commerce_batch(uow: UnitOfWork, events: Sequence[CloudEvent[Any]]) -> None:
        """A batch of sb.commerce.v1 events, set at a time: its shipments, their orders and latest
        episodes read with one statement each per tenant, then every event applied in order as
        `commerce` would (rows written behind at commit), the alerts they raised decided
        together, the events emitted with one statement."""
        by_tenant: dict[str, list[CloudEvent[Any]]] = {}
        for event in events:
            by_tenant.setdefault(event.tenantid, []).append(event)
        for same in by_tenant.values():
            await tracking.preload(ctx(uow, same[0]), [e.data for e in same])
        batch = Batch()
        for event in events:
            await commerce(uow, event, batch)
        await notify.settle(batch)
        await uow.emit_many(batch.outbox)

    async def people(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.customers.v1: the customer read model."""
        await customers.on_customer(ctx(uow, event), event.data)

    async def tickets(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.tickets.v1: open cases per order."""
        await customers.on_ticket(ctx(uow, event), event.data)

    async def receipts(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.receipts.v1: delivery receipts of what we sent."""
        if isinstance(event.data, DeliveryReceiptReceived):
            await delivery.on_receipt(ctx(uow, event), event.data)

    async def messages(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.messages.v1: STOP / START from customers."""
        if isinstance(event.data, MessageReceived):
            await customers.on_message(ctx(uow, event), event.data)

    per_event: dict[str, EventHandler] = {
        "commerce": commerce,
        "customers": people,
        "tickets": tickets,
        "receipts": receipts,
        "messages": messages,
    }
    return per_event, {"commerce": commerce_batch}


TOPICS = {
    "commerce": COMMERCE.name,
    "customers": CUSTOMERS.name,
    "tickets": TICKETS.name,
    "receipts": RECEIPTS.name,
    "messages": MESSAGES.name,
}


def register(
    runtime: ServiceRuntime,
    *,
    clock: Clock,
    tracking_url: str,
    rename: Mapping[str, str] | None = None,
) -> None:
    """Subscribe notifier's consumers (`rename` maps topic names, for isolated tests)."""
    names = dict(rename or {})
    by_name, batched = handlers(clock, tracking_url)
    for consumer, topic in TOPICS.items():
        runtime.consume(
            consumer,
            [names.get(topic, topic)],
            by_name[consumer],
            handle_batch=batched.get(consumer),
        )
