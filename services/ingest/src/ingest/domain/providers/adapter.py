"""Records of channel adapters on `sb.inbound.v1` (InboundAdapterMessage) as inbound messages."""

from __future__ import annotations

from ingest.domain.model import InboundMessage, RawSender
from sbcontracts.events.ingest import InboundAdapterMessage, ThreadRefs


def from_adapter(data: InboundAdapterMessage) -> InboundMessage:
    """The provider-agnostic message of an adapter record."""
    return InboundMessage(
        channel=data.channel,
        provider=data.adapter[:50],
        provider_message_id=data.external_id,
        sender=RawSender(data.sender_kind, data.sender, data.sender_scope),
        provider_timestamp=data.sent_at,
        display_name=data.display_name,
        inbox=data.inbox,
        thread=ThreadRefs(in_reply_to=data.in_reply_to, conversation_id=data.conversation_id),
        subject=data.subject,
        text=data.text,
        html=data.html,
        attachments=data.attachments,
        language=data.language,
    )
