"""Events ingest publishes: normalised messages, delivery receipts, calls, commerce, surveys."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sbcontracts.envelope import EventData
from sbcontracts.events.common import Channel, Handle, HandleKind, Instant
from sbcontracts.topics import CALLS, COMMERCE, INBOUND, MESSAGES, RECEIPTS, SURVEYS

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Attachment(BaseModel):
    """An attachment as metadata only (the bytes stay with the provider or object store)."""

    model_config = _FROZEN
    name: str | None = Field(default=None, max_length=500)
    content_type: str = Field(max_length=200)
    size: int = Field(ge=0)
    sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$")
    url: str | None = Field(default=None, max_length=2000)


class ThreadRefs(BaseModel):
    """What links a message to earlier ones."""

    model_config = _FROZEN
    message_id: str | None = Field(default=None, max_length=998, description="Email Message-ID")
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: tuple[str, ...] = ()
    conversation_id: str | None = Field(default=None, max_length=300, description="Chat thread")


class MessageReceived(EventData):
    """An inbound customer message, normalised from any channel."""

    event_type: ClassVar[str] = "com.switchboard.message.received"
    topic: ClassVar[str] = MESSAGES.name
    message_id: str = Field(min_length=1, max_length=64)
    channel: Channel
    provider: str = Field(max_length=50, description="whatsapp_cloud, twilio, mailgun, ...")
    provider_message_id: str = Field(min_length=1, max_length=300)
    provider_timestamp: Instant | None = None
    provider_sequence: int | None = Field(
        default=None,
        ge=0,
        description=(
            "The provider's delivery order within the inbox where it gives one (Telegram"
            " update_id): webhooks may arrive out of order, consumers order by this."
        ),
    )
    received_at: Instant
    sender: Handle
    display_name: str | None = Field(default=None, max_length=300)
    inbox: str | None = Field(default=None, max_length=320, description="Address/number it came to")
    thread: ThreadRefs = ThreadRefs()
    subject: str | None = Field(default=None, max_length=998)
    text: str = Field(max_length=100_000, description="For people: quotes/signatures stripped")
    body: str = Field(max_length=1_000_000, description="The full text body as received")
    attachments: tuple[Attachment, ...] = ()
    language: str | None = Field(default=None, max_length=8, description="ISO 639-1")


class ReceiptStatus(StrEnum):
    """Provider delivery states of an outbound message."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class DeliveryReceiptReceived(EventData):
    """A provider told us what happened to an outbound message."""

    event_type: ClassVar[str] = "com.switchboard.receipt.received"
    topic: ClassVar[str] = RECEIPTS.name
    channel: Channel
    provider: str = Field(max_length=50)
    provider_message_id: str = Field(min_length=1, max_length=300)
    status: ReceiptStatus
    occurred_at: Instant
    recipient: Handle | None = None
    error_code: str | None = Field(default=None, max_length=100)
    error_text: str | None = Field(default=None, max_length=1000)


class CallData(EventData):
    """Common fields of the call lifecycle events (times in integer milliseconds)."""

    call_id: str = Field(min_length=1, max_length=200)
    queue: str | None = Field(default=None, max_length=100)
    agent_id: str | None = Field(default=None, max_length=100)
    caller: Handle | None = None
    occurred_at: Instant
    offered_at: Instant | None = None
    wait_ms: int = Field(default=0, ge=0)
    talk_ms: int = Field(default=0, ge=0)
    hold_ms: int = Field(default=0, ge=0)
    wrap_ms: int = Field(default=0, ge=0)


class CallOffered(CallData):
    """A call entered a queue."""

    event_type: ClassVar[str] = "com.switchboard.call.offered"
    topic: ClassVar[str] = CALLS.name


class CallAnswered(CallData):
    """An agent answered (wait_ms is the speed of answer)."""

    event_type: ClassVar[str] = "com.switchboard.call.answered"
    topic: ClassVar[str] = CALLS.name


class CallAbandoned(CallData):
    """The caller hung up before an agent answered (wait_ms is time to abandon)."""

    event_type: ClassVar[str] = "com.switchboard.call.abandoned"
    topic: ClassVar[str] = CALLS.name


class CallCompleted(CallData):
    """The call and its wrap-up ended (talk, hold and wrap times are final)."""

    event_type: ClassVar[str] = "com.switchboard.call.completed"
    topic: ClassVar[str] = CALLS.name


class OrderItem(BaseModel):
    """A line of an order."""

    model_config = _FROZEN
    sku: str = Field(max_length=100)
    name: str = Field(max_length=500)
    quantity: int = Field(ge=1)
    unit_price_minor: int | None = Field(default=None, ge=0, description="In minor units")


class ShipmentRef(BaseModel):
    """A shipment of an order as the shop knows it."""

    model_config = _FROZEN
    shipment_id: str = Field(min_length=1, max_length=200)
    carrier: str = Field(max_length=50)
    tracking_number: str = Field(max_length=100)
    dispatch_by: Instant | None = Field(default=None, description="Dispatch cut-off")


class OrderData(EventData):
    """An order with who placed it and what was promised."""

    order_id: str = Field(min_length=1, max_length=200)
    customer_email: str | None = Field(default=None, max_length=320)
    customer_phone: str | None = Field(default=None, max_length=32, description="E.164")
    customer_name: str | None = Field(default=None, max_length=300)
    customer_language: str | None = Field(default=None, max_length=8)
    customer_timezone: str | None = Field(default=None, max_length=64, description="IANA")
    placed_at: Instant
    currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    total_minor: int | None = Field(default=None, ge=0)
    items: tuple[OrderItem, ...] = ()
    promised_from: date | None = None
    promised_to: date | None = None
    shipments: tuple[ShipmentRef, ...] = ()
    status: str | None = Field(default=None, max_length=50)


class OrderPlaced(OrderData):
    """A new order."""

    event_type: ClassVar[str] = "com.switchboard.order.placed"
    topic: ClassVar[str] = COMMERCE.name


class OrderUpdated(OrderData):
    """An order changed (the event carries the whole current order)."""

    event_type: ClassVar[str] = "com.switchboard.order.updated"
    topic: ClassVar[str] = COMMERCE.name


class ShipmentStatus(StrEnum):
    """The one status model every carrier's codes are mapped to."""

    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    ATTEMPT_FAILED = "attempt_failed"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNING = "returning"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class ShipmentEventReceived(EventData):
    """A carrier tracking event, normalised."""

    event_type: ClassVar[str] = "com.switchboard.shipment.event"
    topic: ClassVar[str] = COMMERCE.name
    shipment_id: str = Field(min_length=1, max_length=200)
    order_id: str | None = Field(default=None, max_length=200)
    carrier: str = Field(max_length=50)
    tracking_number: str = Field(max_length=100)
    status: ShipmentStatus
    reason: str | None = Field(default=None, max_length=50, description="carrier, weather, ...")
    carrier_code: str | None = Field(default=None, max_length=50)
    carrier_text: str | None = Field(default=None, max_length=500)
    location: str | None = Field(default=None, max_length=300)
    occurred_at: Instant
    estimate_from: Instant | None = None
    estimate_to: Instant | None = None
    is_delay: bool = Field(default=False, description="The carrier code signals a delay")


class SurveyKind(StrEnum):
    """Which survey: CSAT 1-5, NPS 0-10, CES 1-7."""

    CSAT = "csat"
    NPS = "nps"
    CES = "ces"


class SurveyResponded(EventData):
    """A customer answered a survey."""

    event_type: ClassVar[str] = "com.switchboard.survey.responded"
    topic: ClassVar[str] = SURVEYS.name
    response_id: str = Field(min_length=1, max_length=200)
    kind: SurveyKind
    score: int = Field(ge=0, le=10)
    ticket_id: str | None = Field(default=None, max_length=64)
    customer_id: str | None = Field(default=None, max_length=64)
    respondent: Handle | None = None
    comment: str | None = Field(default=None, max_length=5000)
    responded_at: Instant


class InboundAdapterMessage(EventData):
    """A raw message a channel adapter hands to ingest over Kafka (normalised, deduped there)."""

    event_type: ClassVar[str] = "com.switchboard.inbound.message"
    topic: ClassVar[str] = INBOUND.name
    adapter: str = Field(min_length=1, max_length=100, description="Which adapter sent it")
    channel: Channel
    external_id: str = Field(
        min_length=1, max_length=300, description="Provider message id: the dedupe key"
    )
    sender_kind: HandleKind
    sender: str = Field(min_length=1, max_length=320, description="As the provider gave it")
    sender_scope: str | None = Field(default=None, max_length=200, description="Page / bot id")
    region: str | None = Field(
        default=None, pattern="^[A-Za-z]{2}$", description="Default region for national phones"
    )
    display_name: str | None = Field(default=None, max_length=300)
    inbox: str | None = Field(default=None, max_length=320)
    sent_at: Instant | None = None
    conversation_id: str | None = Field(default=None, max_length=300)
    in_reply_to: str | None = Field(default=None, max_length=998)
    subject: str | None = Field(default=None, max_length=998)
    text: str = Field(default="", max_length=100_000)
    html: str | None = Field(default=None, max_length=1_000_000)
    attachments: tuple[Attachment, ...] = ()
    language: str | None = Field(default=None, max_length=8)
