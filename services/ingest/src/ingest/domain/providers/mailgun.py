"""Mailgun inbound routes: parsed form fields, or the raw MIME (`body-mime`) when forwarded so."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage

from ingest.domain.errors import ParseError
from ingest.domain.handles import split_address
from ingest.domain.model import InboundMessage, RawSender
from ingest.domain.normalise import attachment_of
from ingest.domain.providers.email_mime import parse_mime, refuse_pathological_headers
from ingest.domain.providers.fields import load_form
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.events.ingest import Attachment, ThreadRefs


def read_form(raw: bytes, content_type: str) -> tuple[dict[str, str], tuple[Attachment, ...]]:
    """Fields (and file parts as attachment metadata) of an urlencoded or multipart form."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return load_form(raw), ()
    if not content_type.startswith("multipart/form-data"):
        raise ParseError("expected a form")
    head = f"Content-Type: {content_type}\n".encode("latin-1", "replace")
    refuse_pathological_headers(head + raw)
    try:
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        doc = message_from_bytes(head + raw, policy=policy.HTTP)
        fields: dict[str, str] = {}
        files: list[Attachment] = []
        if not isinstance(doc, EmailMessage) or not doc.is_multipart():
            raise ParseError("multipart body without parts")
        for part in doc.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            if part.get_filename():
                files.append(
                    attachment_of(
                        name=part.get_filename(), content_type=part.get_content_type(), data=data
                    )
                )
            elif isinstance(name, str):
                fields[name] = data.decode(part.get_content_charset() or "utf-8", errors="replace")
        return fields, tuple(files)
    except ParseError:
        raise
    except Exception as exc:  # stdlib MIME accessors on hostile input: see email_mime.parse_mime
        raise ParseError(f"malformed multipart form: {type(exc).__name__}") from exc


def _from_headers(fields: dict[str, str], name: str) -> str | None:
    """A header from Mailgun's `message-headers` field (a JSON list of [name, value] pairs)."""
    try:
        pairs = json.loads(fields.get("message-headers") or "[]")
    except (ValueError, RecursionError):
        return None
    for pair in pairs if isinstance(pairs, list) else []:
        if isinstance(pair, list) and len(pair) == 2 and str(pair[0]).lower() == name:
            return str(pair[1])
    return None


def parse_mailgun(fields: dict[str, str], files: tuple[Attachment, ...]) -> InboundMessage:
    """The message of a Mailgun inbound route post."""
    if fields.get("body-mime"):
        return parse_mime(fields["body-mime"].encode("utf-8", errors="replace"))
    name, address = split_address(fields.get("from") or fields.get("sender") or "")
    if "@" not in address:
        raise ParseError("sender is required")
    message_id = (fields.get("Message-Id") or _from_headers(fields, "message-id") or "").strip()
    if not message_id:
        raise ParseError("Message-Id is required")
    return InboundMessage(
        channel=Channel.EMAIL,
        provider="mailgun",
        provider_message_id=message_id[:300],
        sender=RawSender(HandleKind.EMAIL, address),
        display_name=name[:300] or None,
        inbox=(fields.get("recipient") or "")[:320] or None,
        thread=ThreadRefs(
            message_id=message_id[:998],
            in_reply_to=(fields.get("In-Reply-To") or "")[:998] or None,
            references=tuple((fields.get("References") or "").split())[:100],
        ),
        subject=(fields.get("subject") or "")[:998] or None,
        text=fields.get("body-plain") or "",
        html=fields.get("body-html"),
        attachments=files,
    )
