"""Meta webhooks: WhatsApp Cloud API and Messenger (every entry, change and message of a batch)."""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from ingest.domain.errors import ParseError
from ingest.domain.model import Batch, InboundMessage, RawSender, Receipt
from ingest.domain.providers.fields import epoch, ident, items, load_json, obj, text
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.events.ingest import Attachment, ReceiptStatus, ThreadRefs

_HEX64 = re.compile("^[0-9a-f]{64}$")
_WA_MEDIA = ("image", "document", "audio", "video", "sticker")
_WA_STATUS = {
    "sent": ReceiptStatus.SENT,
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.READ,
    "failed": ReceiptStatus.FAILED,
}


def _hex_sha256(value: str | None) -> str | None:
    """A SHA-256 digest as lower-case hex; Meta sends hex or base64 depending on the product."""
    if not value:
        return None
    if _HEX64.match(value.lower()):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 32 else None


def _wa_media(media: dict[str, Any]) -> Attachment:
    """WhatsApp gives a media id, MIME type and SHA-256, a filename for documents, never a size."""
    return Attachment(
        name=(text(media, "filename") or "")[:500] or None,
        content_type=(text(media, "mime_type") or "application/octet-stream")[:200],
        size=0,
        sha256=_hex_sha256(text(media, "sha256")),
        url=f"whatsapp-media:{ident(media, 'id')}"[:2000],
    )


def _wa_body(msg: dict[str, Any]) -> tuple[str, tuple[Attachment, ...]]:
    kind = text(msg, "type") or "text"
    if kind == "text":
        return text(obj(msg, "text"), "body") or "", ()
    if kind in _WA_MEDIA:
        media = obj(msg, kind)
        return text(media, "caption") or "", (_wa_media(media),)
    if kind == "button":
        return text(obj(msg, "button"), "text") or "", ()
    if kind == "interactive":
        inter = obj(msg, "interactive")
        reply = obj(inter, "button_reply", required=False) or obj(
            inter, "list_reply", required=False
        )
        return text(reply, "title") or "", ()
    if kind == "location":
        loc = obj(msg, "location")
        return (
            f"{text(loc, 'latitude')},{text(loc, 'longitude')} {text(loc, 'name') or ''}".strip(),
            (),
        )
    return "", ()  # reactions, unsupported types: kept as an empty message with its id


def _wa_message(msg: dict[str, Any], value: dict[str, Any]) -> InboundMessage | None:
    if text(msg, "type") in ("reaction", "unsupported", "system"):
        return None
    sender = ident(msg, "from")
    names = {
        text(c, "wa_id"): text(obj(c, "profile", required=False), "name")
        for c in items(value, "contacts")
    }
    body, attachments = _wa_body(msg)
    context = obj(msg, "context", required=False)
    metadata = obj(value, "metadata", required=False)
    display_number = text(metadata, "display_phone_number")
    return InboundMessage(
        channel=Channel.WHATSAPP,
        provider="whatsapp_cloud",
        provider_message_id=ident(msg, "id"),
        sender=RawSender(HandleKind.PHONE, "+" + sender.lstrip("+")),
        provider_timestamp=epoch(msg.get("timestamp")),
        display_name=names.get(sender),
        inbox=("+" + display_number.lstrip("+")) if display_number else None,
        thread=ThreadRefs(in_reply_to=text(context, "id", limit=998), conversation_id=sender[:300]),
        text=body,
        attachments=attachments,
    )


def _wa_receipt(status: dict[str, Any]) -> Receipt | None:
    mapped = _WA_STATUS.get(text(status, "status") or "")
    if mapped is None:
        return None
    errors = items(status, "errors")
    first = errors[0] if errors else {}
    recipient = text(status, "recipient_id")
    return Receipt(
        channel=Channel.WHATSAPP,
        provider="whatsapp_cloud",
        provider_message_id=ident(status, "id"),
        status=mapped,
        occurred_at=epoch(status.get("timestamp")) or _missing("timestamp"),
        recipient=RawSender(HandleKind.PHONE, "+" + recipient.lstrip("+")) if recipient else None,
        error_code=(text(first, "code") or None) and str(text(first, "code"))[:100],
        error_text=((text(first, "title") or text(first, "message")) or "")[:1000] or None,
    )


def _missing(name: str) -> Any:
    raise ParseError(f"{name} is required")


def parse_whatsapp(raw: bytes) -> Batch:
    """Every message and status of a WhatsApp Cloud API webhook."""
    doc = load_json(raw)
    if doc.get("object") != "whatsapp_business_account":
        raise ParseError("not a WhatsApp Business Account webhook")
    batch = Batch()
    for entry in items(doc, "entry"):
        for change in items(entry, "changes"):
            if change.get("field") != "messages":
                continue
            value = obj(change, "value")
            for msg in items(value, "messages"):
                parsed = _wa_message(msg, value)
                if parsed:
                    batch.messages.append(parsed)
            for status in items(value, "statuses"):
                receipt = _wa_receipt(status)
                if receipt:
                    batch.receipts.append(receipt)
    return batch


_MS_RANGES = {"image": "image/*", "video": "video/*", "audio": "audio/*"}


def _file_name(url: str) -> str:
    try:
        return unquote(PurePosixPath(urlsplit(url).path).name)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: no name, the URL is still kept
        return ""


def _ms_attachment(att: dict[str, Any]) -> Attachment:
    """Messenger gives a category and a CDN URL only: no size, no hash, no MIME type.

    A `file` URL ends with the file's name, which also gives its MIME type; otherwise the
    category becomes a media range (`image/*`).
    """
    payload = obj(att, "payload", required=False)
    url = (text(payload, "url") or "")[:2000] or None
    category = text(att, "type") or "file"
    name = _file_name(url) if url and category == "file" else ""
    guessed = mimetypes.guess_type(name)[0] if name else None
    content_type = guessed or _MS_RANGES.get(category, "application/octet-stream")
    return Attachment(name=name[:500] or None, content_type=content_type, size=0, url=url)


def _ms_attachments(message: dict[str, Any]) -> tuple[Attachment, ...]:
    return tuple(_ms_attachment(att) for att in items(message, "attachments"))


def _ms_event(event: dict[str, Any], page_id: str, batch: Batch) -> None:
    sender = ident(obj(event, "sender"), "id")
    when = epoch(event.get("timestamp"), millis=True)
    message = obj(event, "message", required=False)
    if message and not message.get("is_echo"):
        reply_to = obj(message, "reply_to", required=False)
        batch.messages.append(
            InboundMessage(
                channel=Channel.MESSENGER,
                provider="messenger",
                provider_message_id=ident(message, "mid"),
                sender=RawSender(HandleKind.MESSENGER, sender, scope=page_id),
                provider_timestamp=when,
                inbox=page_id,
                thread=ThreadRefs(
                    in_reply_to=text(reply_to, "mid", limit=998), conversation_id=sender
                ),
                text=text(message, "text") or "",
                attachments=_ms_attachments(message),
            )
        )
    delivery = obj(event, "delivery", required=False)
    mids = delivery.get("mids") or []
    if not isinstance(mids, list):
        raise ParseError("delivery.mids must be a list")
    for mid in mids:
        if isinstance(mid, str) and mid:
            batch.receipts.append(
                Receipt(
                    Channel.MESSENGER,
                    "messenger",
                    mid[:300],
                    ReceiptStatus.DELIVERED,
                    when or epoch(delivery.get("watermark"), millis=True) or _missing("timestamp"),
                )
            )


def parse_messenger(raw: bytes) -> Batch:
    """Every messaging event of a Messenger webhook (echoes of our own sends skipped)."""
    doc = load_json(raw)
    if doc.get("object") != "page":
        raise ParseError("not a page webhook")
    batch = Batch()
    for entry in items(doc, "entry"):
        page_id = ident(entry, "id")
        for event in items(entry, "messaging"):
            _ms_event(event, page_id, batch)
    return batch
