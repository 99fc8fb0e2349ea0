"""From a parsed inbound message to the `message.received` event other services consume."""

from __future__ import annotations

import hashlib
from datetime import datetime

from ingest.domain.handles import normalise_handle
from ingest.domain.language import detect_language
from ingest.domain.model import InboundMessage
from ingest.domain.text import html_to_text, strip_quotes_and_signature, tidy
from sbcontracts.events.ingest import Attachment, MessageReceived

MAX_TEXT = 100_000
MAX_BODY = 1_000_000


def attachment_of(
    *, name: str | None, content_type: str, data: bytes | None, size: int | None = None
) -> Attachment:
    """Attachment metadata; the hash is over the bytes when we have them."""
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    length = len(data) if data is not None else (size or 0)
    return Attachment(
        name=(name or None) and name[:500],
        content_type=(content_type or "application/octet-stream")[:200],
        size=length,
        sha256=digest,
    )


def normalise(
    msg: InboundMessage,
    *,
    message_id: str,
    received_at: datetime,
    region: str | None,
    languages: frozenset[str],
) -> MessageReceived:
    """The normalised event: canonical sender, readable text, detected language."""
    body = tidy(msg.text) if msg.text.strip() else html_to_text(msg.html or "")
    text = strip_quotes_and_signature(body)
    language = msg.language or detect_language(text, languages)
    return MessageReceived(
        message_id=message_id,
        channel=msg.channel,
        provider=msg.provider,
        provider_message_id=msg.provider_message_id,
        provider_timestamp=msg.provider_timestamp,
        provider_sequence=msg.sequence,
        received_at=received_at,
        sender=normalise_handle(msg.sender, region=region),
        display_name=(msg.display_name or None) and msg.display_name[:300],
        inbox=(msg.inbox or None) and msg.inbox[:320],
        thread=msg.thread,
        subject=(msg.subject or None) and msg.subject[:998],
        text=text[:MAX_TEXT],
        body=body[:MAX_BODY],
        attachments=msg.attachments,
        language=language,
    )
