"""Inbound email as raw RFC 5322 / MIME (stdlib `email`, policy.default): text, threads, attachments."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr

from ingest.domain.errors import ParseError
from ingest.domain.model import InboundMessage, RawSender
from ingest.domain.normalise import attachment_of
from sbcontracts.events.common import EARLIEST, LATEST, Channel, HandleKind
from sbcontracts.events.ingest import Attachment, ThreadRefs

_MAX_ATTACHMENTS = 50
# The stdlib header parser is quadratic in the quoted strings of one header (20,000 quotes take
# seconds). No real header has more than a few; a field with more is refused before parsing.
MAX_HEADER_QUOTES = 200
_HEADER_START = re.compile(rb"^[!-9;-~]+:")


def _nesting(line: bytes) -> int:
    return line.count(b'"') + line.count(b"(") + line.count(b"[")


def refuse_pathological_headers(raw: bytes) -> None:
    """ParseError when a header-looking field (with its folded lines) holds too many quotes.

    Quotes, comments and domain literals (`"`, `(`, `[`) all send the stdlib's header parser
    into nested tokens; thousands of them in one header take seconds.

    Every line is considered (part headers sit deep in multipart bodies); a body line that
    looks like a header counts too, which only refuses absurd input.
    """
    quotes = 0
    for line in raw.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            quotes += _nesting(line)
        elif _HEADER_START.match(line):
            quotes = _nesting(line)
        else:
            quotes = 0
        if quotes > MAX_HEADER_QUOTES:
            raise ParseError("a header has too many quoted strings")


def _decoded(part: Message) -> str:
    """A text part's content, tolerating legacy or mislabelled charsets."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = (part.get_content_charset() or "utf-8").lower()
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name: best effort rather than a lost message
        return payload.decode("utf-8", errors="replace")


def _bodies(msg: EmailMessage) -> tuple[str, str | None]:
    """(plain text, html) preferring text/plain of multipart/alternative."""
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return (_decoded(plain) if plain else ""), (_decoded(html) if html else None)


def _attachments(msg: EmailMessage) -> tuple[Attachment, ...]:
    found = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        found.append(
            attachment_of(name=part.get_filename(), content_type=part.get_content_type(), data=data)
        )
        if len(found) >= _MAX_ATTACHMENTS:
            break
    return tuple(found)


def _header(msg: EmailMessage, name: str) -> str | None:
    value = msg.get(name)
    return " ".join(str(value).split())[:998] or None if value is not None else None


def _when(msg: EmailMessage) -> datetime | None:
    header = msg.get("Date")
    stamp = getattr(header, "datetime", None)
    if not isinstance(stamp, datetime):
        return None
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    # the sender's clock, not the provider's: an absurd Date is dropped, the mail is kept
    return stamp if EARLIEST <= stamp < LATEST else None


def _inbox(msg: EmailMessage, default: str | None) -> str | None:
    for name in ("Delivered-To", "X-Original-To", "To"):
        addresses = [a for _, a in getaddresses([str(v) for v in msg.get_all(name) or []]) if a]
        if addresses:
            return addresses[0][:320]
    return default


def _build(raw: bytes, inbox: str | None) -> InboundMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(msg, EmailMessage) or msg.get("From") is None:
        raise ParseError("not an email: no From header")
    name, address = parseaddr(str(msg["From"]))
    if "@" not in address:
        raise ParseError("From has no address")
    message_id = _header(msg, "Message-ID")
    plain, html = _bodies(msg)
    references = tuple((_header(msg, "References") or "").split())[:100]
    return InboundMessage(
        channel=Channel.EMAIL,
        provider="email",
        provider_message_id=(message_id or "sha256:" + hashlib.sha256(raw).hexdigest())[:300],
        sender=RawSender(HandleKind.EMAIL, address),
        provider_timestamp=_when(msg),
        display_name=name[:300] or None,
        inbox=_inbox(msg, inbox),
        thread=ThreadRefs(
            message_id=message_id, in_reply_to=_header(msg, "In-Reply-To"), references=references
        ),
        subject=_header(msg, "Subject"),
        text=plain,
        html=html,
        attachments=_attachments(msg),
    )


def parse_mime(raw: bytes, *, inbox: str | None = None) -> InboundMessage:
    """The message of a raw RFC 5322 email; ParseError for anything that is not one."""
    if not raw.strip():
        raise ParseError("empty message")
    refuse_pathological_headers(raw)
    try:
        return _build(raw, inbox)
    except ParseError:
        raise
    # The stdlib parser is lenient but its header and payload accessors can raise many types on
    # hostile input (defects surface lazily); any of them means "malformed MIME" to our callers.
    except Exception as exc:
        raise ParseError(f"malformed MIME: {type(exc).__name__}") from exc
