"""The event catalog: event type name → payload model; decoding raw records into typed envelopes."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from sbcontracts.envelope import CloudEvent, EventData, envelope_of
from sbcontracts.events import control, crm, ingest, notifier, outbound, routing

EVENT_MODELS: tuple[type[EventData], ...] = (
    control.TenantCreated,
    control.TokenRevoked,
    ingest.MessageReceived,
    ingest.DeliveryReceiptReceived,
    ingest.CallOffered,
    ingest.CallAnswered,
    ingest.CallAbandoned,
    ingest.CallCompleted,
    ingest.OrderPlaced,
    ingest.OrderUpdated,
    ingest.ShipmentEventReceived,
    ingest.SurveyResponded,
    ingest.InboundAdapterMessage,
    crm.MessageAttributed,
    crm.CustomerCreated,
    crm.CustomerUpdated,
    crm.CustomerIdentityLinked,
    crm.CustomerMerged,
    crm.CustomerUnmerged,
    crm.CustomerErased,
    routing.TicketOpened,
    routing.TicketMessageAdded,
    routing.TicketClassified,
    routing.TicketAssigned,
    routing.TicketAgentReplied,
    routing.TicketTransferred,
    routing.TicketStatusChanged,
    routing.TicketResolved,
    routing.TicketReopened,
    routing.TicketSlaWarning,
    routing.TicketSlaBreached,
    routing.AgentPresenceChanged,
    outbound.OutboundMessage,
    notifier.NotificationScheduled,
    notifier.NotificationSent,
    notifier.NotificationDelivered,
    notifier.NotificationFailed,
    notifier.NotificationSuppressed,
)
BY_TYPE: dict[str, type[EventData]] = {m.event_type: m for m in EVENT_MODELS}


class InvalidEvent(ValueError):
    """A record that is not a valid event of a known type (a poison message)."""


def encode(event: CloudEvent[Any]) -> bytes:
    """Serialise an envelope to its wire form (structured-mode JSON)."""
    return event.model_dump_json(exclude_none=True).encode()


def decode(raw: bytes) -> CloudEvent[Any]:
    """Parse a wire record into a typed envelope, or raise InvalidEvent."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # deep nesting too
        raise InvalidEvent(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidEvent("envelope is not an object")
    model = BY_TYPE.get(str(doc.get("type")))
    if model is None:
        raise InvalidEvent(f"unknown event type {doc.get('type')!r}")
    try:
        return envelope_of(model).model_validate(doc)
    except ValidationError as exc:
        raise InvalidEvent(f"invalid {model.event_type}: {exc.error_count()} errors") from exc
