"""Telegram Bot API updates (messages; other update kinds are acknowledged and ignored)."""

from __future__ import annotations

from typing import Any

from ingest.domain.errors import ParseError
from ingest.domain.model import InboundMessage, RawSender
from ingest.domain.providers.fields import MAX_ID, epoch, ident, load_json, obj, text
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.events.ingest import Attachment, ThreadRefs


def _size(doc: dict[str, Any]) -> int:
    value = doc.get("file_size")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    document = obj(message, "document", required=False)
    if document:
        found.append(
            Attachment(
                name=(text(document, "file_name") or "")[:500] or None,
                content_type=(text(document, "mime_type") or "application/octet-stream")[:200],
                size=_size(document),
                url=f"telegram-file:{ident(document, 'file_id')}"[:2000],
            )
        )
    photos = message.get("photo")
    if isinstance(photos, list) and photos and isinstance(photos[-1], dict):
        largest = photos[-1]  # Telegram lists sizes smallest first
        found.append(
            Attachment(
                content_type="image/jpeg",
                size=_size(largest),
                url=f"telegram-file:{ident(largest, 'file_id')}"[:2000],
            )
        )
    return tuple(found)


def _ref(chat_id: str, message: dict[str, Any]) -> str:
    """A message's id in its chat (chat and message ids are each bounded, so is the pair)."""
    ref = f"{chat_id}:{ident(message, 'message_id')}"
    if len(ref) > MAX_ID:
        raise ParseError("chat and message ids too long")
    return ref


def parse_telegram(raw: bytes, *, bot_id: str) -> tuple[int, InboundMessage | None]:
    """The update id and the message an update carries (None for other update kinds)."""
    doc = load_json(raw)
    raw_id = doc.get("update_id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, int) or raw_id < 0:
        raise ParseError("update_id must be a non-negative integer")
    update_id = raw_id
    message = obj(doc, "message", required=False)
    if not message:
        return update_id, None
    sender = obj(message, "from", required=False) or obj(message, "chat")
    user_id = ident(sender, "id")
    chat_id = ident(obj(message, "chat"), "id")
    reply = obj(message, "reply_to_message", required=False)
    name = " ".join(n for n in (text(sender, "first_name"), text(sender, "last_name")) if n)
    return update_id, InboundMessage(
        channel=Channel.TELEGRAM,
        provider="telegram",
        provider_message_id=_ref(chat_id, message),
        sender=RawSender(HandleKind.TELEGRAM, user_id, scope=bot_id),
        provider_timestamp=epoch(message.get("date")),
        sequence=update_id,
        display_name=name[:300] or None,
        inbox=bot_id,
        thread=ThreadRefs(
            in_reply_to=_ref(chat_id, reply) if reply else None,
            conversation_id=chat_id,
        ),
        text=text(message, "text") or text(message, "caption") or "",
        attachments=_attachments(message),
    )
