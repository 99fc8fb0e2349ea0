"""Kafka consumers of crm: parse the event, call its use case (the runtime handles inbox and DLQ)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm.domain.handles import InvalidHandle
from crm.service_layer import activity, attribution, events
from crm.service_layer.context import Ctx
from crm.service_layer.errors import CustomerNotFound
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.ingest import (
    MessageReceived,
    OrderData,
    ShipmentEventReceived,
    SurveyResponded,
)
from sbcontracts.events.notifier import NotificationData
from sbcontracts.events.routing import TicketData
from sbcontracts.topics import COMMERCE, MESSAGES, NOTIFICATIONS, SURVEYS, TICKETS
from sbkit.bus.ports import PoisonMessage
from sbkit.db.uow import UnitOfWork
from sbkit.runtime import ServiceRuntime


class Consumers:
    """crm's event handlers, bound to the secret its erasure tombstones are keyed with."""

    def __init__(self, tombstone_secret: bytes) -> None:
        self.secret = tombstone_secret

    def _ctx(self, uow: UnitOfWork, event: CloudEvent[Any]) -> Ctx:
        return Ctx(
            uow,
            event.tenantid,
            correlation_id=event.correlationid,
            causation_id=event.id,
            tombstone_secret=self.secret,
        )

    async def messages(self, uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.messages.v1: attribute each message to a customer."""
        if not isinstance(event.data, MessageReceived):
            return  # other types on the topic are not ours
        try:
            await events.on_message(self._ctx(uow, event), event.id, event.data)
        except InvalidHandle as exc:
            raise PoisonMessage(f"sender handle: {exc}") from exc

    async def messages_batch(self, uow: UnitOfWork, batch: Sequence[CloudEvent[Any]]) -> None:
        """sb.messages.v1, a polled batch at once: the same attribution in a few round trips."""
        try:
            await attribution.on_messages(uow, batch, tombstone_secret=self.secret)
        except InvalidHandle as exc:  # the kit replays the batch one by one: only it is poison
            raise PoisonMessage(f"sender handle: {exc}") from exc

    async def commerce(self, uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.commerce.v1: orders link handles; shipments update the card's orders."""
        ctx = self._ctx(uow, event)
        try:
            if isinstance(event.data, OrderData):
                await events.on_order(ctx, event.id, event.data)
            elif isinstance(event.data, ShipmentEventReceived):
                await events.on_shipment(ctx, event.id, event.data)
        except CustomerNotFound as exc:
            raise PoisonMessage(str(exc)) from exc

    async def surveys(self, uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.surveys.v1: survey answers on the timeline."""
        if isinstance(event.data, SurveyResponded):
            try:
                await events.on_survey(self._ctx(uow, event), event.id, event.data)
            except InvalidHandle as exc:
                raise PoisonMessage(f"respondent handle: {exc}") from exc

    async def tickets(self, uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.tickets.v1: open cases and contact reasons for the card, milestones on the timeline."""
        if isinstance(event.data, TicketData):
            await activity.on_ticket(self._ctx(uow, event), event.id, event.data)

    async def notifications(self, uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        """sb.notifications.v1: proactive notifications on the timeline."""
        if isinstance(event.data, NotificationData):
            await activity.on_notification(self._ctx(uow, event), event.id, event.data)


def register(
    runtime: ServiceRuntime,
    rename: Mapping[str, str] | None = None,
    *,
    tombstone_secret: bytes,
) -> None:
    """Subscribe crm's consumers (`rename` maps topic names, for isolated tests)."""
    names = dict(rename or {})
    c = Consumers(tombstone_secret)
    runtime.consume(
        "messages",
        [names.get(MESSAGES.name, MESSAGES.name)],
        c.messages,
        handle_batch=c.messages_batch,
    )
    for consumer, topic, handler in (
        ("commerce", COMMERCE.name, c.commerce),
        ("surveys", SURVEYS.name, c.surveys),
        ("tickets", TICKETS.name, c.tickets),
        ("notifications", NOTIFICATIONS.name, c.notifications),
    ):
        runtime.consume(consumer, [names.get(topic, topic)], handler)
