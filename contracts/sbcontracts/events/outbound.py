"""Events for channel adapters to deliver: outbound messages (agent replies, auto-replies)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sbcontracts.envelope import EventData
from sbcontracts.events.common import Channel, Handle, Instant
from sbcontracts.topics import OUTBOUND


class OutboundMessage(EventData):
    """A message to send to a customer on a channel (keyed by tenant + customer id)."""

    event_type: ClassVar[str] = "com.switchboard.outbound.message"
    topic: ClassVar[str] = OUTBOUND.name
    message_id: str = Field(min_length=1, max_length=64, description="Our id of this message")
    ticket_id: str | None = Field(default=None, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    channel: Channel
    recipient: Handle
    text: str = Field(min_length=1, max_length=100_000)
    subject: str | None = Field(default=None, max_length=998)
    in_reply_to: str | None = Field(
        default=None, max_length=998, description="Provider id / Message-ID being answered"
    )
    references: tuple[str, ...] = Field(default=(), description="Email thread references")
    agent_id: str | None = Field(default=None, max_length=100, description="None: automatic")
    kind: str = Field(default="reply", max_length=20, description="reply or auto_reply")
    created_at: Instant
