"""Twilio webhooks: inbound SMS (and WhatsApp via Twilio), message status and voice status callbacks."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ingest.domain.errors import InvalidHandle, ParseError
from ingest.domain.handles import normalise_handle
from ingest.domain.model import Batch, InboundMessage, RawSender, Receipt
from ingest.domain.providers.fields import instant
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.ingest import (
    Attachment,
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallData,
    CallOffered,
    ReceiptStatus,
)

_STATUS = {
    "sent": ReceiptStatus.SENT,
    "delivered": ReceiptStatus.DELIVERED,
    "read": ReceiptStatus.READ,
    "undelivered": ReceiptStatus.FAILED,
    "failed": ReceiptStatus.FAILED,
}
_CALL: dict[str, type[CallData]] = {
    "ringing": CallOffered,
    "in-progress": CallAnswered,
    "completed": CallCompleted,
    "busy": CallAbandoned,
    "no-answer": CallAbandoned,
    "canceled": CallAbandoned,
}


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name, "").strip()
    if not value or len(value) > 300:
        raise ParseError(f"{name} is required")
    return value


def _handle(value: str) -> tuple[Channel, RawSender]:
    if value.startswith("whatsapp:"):
        return Channel.WHATSAPP, RawSender(HandleKind.PHONE, value.removeprefix("whatsapp:"))
    return Channel.SMS, RawSender(HandleKind.PHONE, value)


def _media(params: dict[str, str]) -> tuple[Attachment, ...]:
    count = params.get("NumMedia", "0")
    n = int(count) if count.isascii() and count.isdigit() else 0
    return tuple(
        Attachment(
            content_type=params.get(f"MediaContentType{i}", "application/octet-stream")[:200],
            size=0,
            url=params.get(f"MediaUrl{i}", "")[:2000] or None,
        )
        for i in range(min(n, 10))
    )


def parse_twilio_message(params: dict[str, str]) -> Batch:
    """An inbound message, or a status callback of one of ours (→ receipt)."""
    sid = _required(params, "MessageSid") if "MessageSid" in params else _required(params, "SmsSid")
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if status and status != "received":
        mapped = _STATUS.get(status)
        if mapped is None:
            return Batch()  # queued, sending, accepted...: not a receipt state
        channel, recipient = _handle(_required(params, "To"))
        receipt = Receipt(
            channel,
            "twilio",
            sid,
            mapped,
            datetime.now(UTC),
            recipient=recipient,
            error_code=params.get("ErrorCode", "")[:100] or None,
            error_text=params.get("ErrorMessage", "")[:1000] or None,
        )
        return Batch(receipts=[receipt])
    channel, sender = _handle(_required(params, "From"))
    message = InboundMessage(
        channel=channel,
        provider="twilio",
        provider_message_id=sid,
        sender=sender,
        display_name=params.get("ProfileName", "")[:300] or None,
        inbox=params.get("To", "").removeprefix("whatsapp:")[:320] or None,
        text=params.get("Body", ""),
        attachments=_media(params),
    )
    return Batch(messages=[message])


def _caller(params: dict[str, str], region: str | None) -> Handle | None:
    raw = params.get("From") or params.get("Caller") or ""
    try:
        return normalise_handle(RawSender(HandleKind.PHONE, raw), region=region)
    except InvalidHandle:
        return None  # anonymous, client:..., sip:...: no phone handle


def parse_twilio_call(params: dict[str, str], *, region: str | None) -> tuple[str, CallData | None]:
    """The call lifecycle event of a voice status callback (None for states we do not track)."""
    sid = _required(params, "CallSid")
    if len(sid) > 200:  # call ids are bounded tighter than message ids
        raise ParseError("CallSid too long")
    model = _CALL.get(params.get("CallStatus", ""))
    if model is None:
        return sid, None
    occurred = datetime.now(UTC)
    if params.get("Timestamp"):
        try:
            occurred = parsedate_to_datetime(params["Timestamp"])
        except (TypeError, ValueError) as exc:
            raise ParseError("bad Timestamp") from exc
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
        occurred = instant(occurred)
    duration = params.get("CallDuration", "0")
    talk_ms = (
        int(duration) * 1000
        if duration.isascii() and duration.isdigit() and len(duration) < 9
        else 0
    )
    return sid, model(
        call_id=sid,
        occurred_at=occurred,
        talk_ms=talk_ms if model is CallCompleted else 0,
        queue=params.get("QueueSid", "")[:100] or None,
        caller=_caller(params, region),
    )
