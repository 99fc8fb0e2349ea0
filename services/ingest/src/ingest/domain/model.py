"""What every channel parser produces before normalisation: one provider-agnostic message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.events.ingest import Attachment, ReceiptStatus, ThreadRefs


@dataclass(frozen=True)
class RawSender:
    """A sender identifier as the provider gave it (normalised later)."""

    kind: HandleKind
    value: str
    scope: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A parsed inbound message from any channel."""

    channel: Channel
    provider: str
    provider_message_id: str
    sender: RawSender
    provider_timestamp: datetime | None = None
    sequence: int | None = None  # the provider's delivery order where it gives one (update_id)
    display_name: str | None = None
    inbox: str | None = None
    thread: ThreadRefs = field(default_factory=ThreadRefs)
    subject: str | None = None
    text: str = ""
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    language: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A provider delivery status of one of our outbound messages."""

    channel: Channel
    provider: str
    provider_message_id: str
    status: ReceiptStatus
    occurred_at: datetime
    recipient: RawSender | None = None
    error_code: str | None = None
    error_text: str | None = None


@dataclass(frozen=True)
class Batch:
    """Everything one webhook delivery carried (a batch may hold many of each)."""

    messages: list[InboundMessage] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
