"""Events notifier publishes: proactive delay notifications and what became of each (with reasons)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sbcontracts.envelope import EventData
from sbcontracts.events.common import Channel, Instant
from sbcontracts.topics import NOTIFICATIONS

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class NotificationData(EventData):
    """Common fields: which notification, about what delay, and why this decision."""

    notification_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    order_id: str | None = Field(default=None, max_length=200)
    shipment_id: str = Field(min_length=1, max_length=200)
    episode: int = Field(ge=1, description="Delay episode of the shipment")
    delay_reason: str = Field(
        max_length=50,
        description="carrier_delay_code, estimate_after_promise, stalled, "
        "missed_dispatch_cutoff, estimate_worsened",
    )
    reason: str = Field(max_length=200, description="Why this decision (allowed, quiet_hours, ...)")
    channel: Channel | None = None
    occurred_at: Instant


class NotificationScheduled(NotificationData):
    """An alert was decided; it goes out at `not_before` (later than now when deferred)."""

    event_type: ClassVar[str] = "com.switchboard.notification.scheduled"
    topic: ClassVar[str] = NOTIFICATIONS.name
    not_before: Instant
    language: str | None = Field(default=None, max_length=8)


class NotificationSent(NotificationData):
    """A provider accepted the message."""

    event_type: ClassVar[str] = "com.switchboard.notification.sent"
    topic: ClassVar[str] = NOTIFICATIONS.name
    provider: str = Field(max_length=50)
    provider_message_id: str | None = Field(default=None, max_length=300)
    attempt: int = Field(default=1, ge=1)


class NotificationDelivered(NotificationData):
    """A delivery receipt confirmed the message reached the customer."""

    event_type: ClassVar[str] = "com.switchboard.notification.delivered"
    topic: ClassVar[str] = NOTIFICATIONS.name
    provider_message_id: str | None = Field(default=None, max_length=300)


class NotificationFailed(NotificationData):
    """A send failed or was not delivered in time; `next_channel` is the fallback, if any."""

    event_type: ClassVar[str] = "com.switchboard.notification.failed"
    topic: ClassVar[str] = NOTIFICATIONS.name
    error: str | None = Field(default=None, max_length=1000)
    next_channel: Channel | None = None


class InternalNote(BaseModel):
    """A note for the agents of an open case, instead of a message to the customer."""

    model_config = _FROZEN
    ticket_id: str | None = Field(default=None, max_length=64)
    text: str = Field(min_length=1, max_length=5000)


class NotificationSuppressed(NotificationData):
    """No message to the customer (open case, opted out, unreachable); `note` is for the case."""

    event_type: ClassVar[str] = "com.switchboard.notification.suppressed"
    topic: ClassVar[str] = NOTIFICATIONS.name
    note: InternalNote | None = None
