"""Real-format provider payloads (after the providers' public documentation) and signers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from ingest.domain.signatures import twilio_signature

TEXTS = {
    "pl": "Dzień dobry, moja paczka miała przyjść wczoraj i nadal jej nie ma. Co się dzieje?",
    "ru": "Здравствуйте, моя посылка должна была прийти вчера, но её до сих пор нет.",
    "ro": "Bună ziua, coletul meu trebuia să ajungă ieri și încă nu a sosit. Ce s-a întâmplat?",
    "en": "Hello, my parcel was supposed to arrive yesterday and it is still not here.",
}


def hub_signature(secret: str, raw: bytes) -> str:
    """X-Hub-Signature-256 of a body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def whatsapp(messages: list[dict[str, Any]], statuses: list[dict[str, Any]] | None = None) -> bytes:
    """A WhatsApp Cloud API webhook with one entry/change (Meta's documented shape)."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "48221234567", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Józef Wiśniewski"}, "wa_id": "48600100200"}],
        "messages": messages,
    }
    if statuses:
        value["statuses"] = statuses
    doc = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(doc, ensure_ascii=False).encode()


def wa_text(wamid: str, body: str, sender: str = "48600100200") -> dict[str, Any]:
    """One WhatsApp text message."""
    return {
        "from": sender,
        "id": wamid,
        "timestamp": "1732262400",
        "type": "text",
        "text": {"body": body},
    }


def messenger(events: list[dict[str, Any]], page_id: str = "1234567890") -> bytes:
    """A Messenger webhook (object=page) with one entry."""
    doc = {"object": "page", "entry": [{"id": page_id, "time": 1732262400000, "messaging": events}]}
    return json.dumps(doc, ensure_ascii=False).encode()


def ms_text(mid: str, text: str, psid: str = "6543210987654321") -> dict[str, Any]:
    """One Messenger messaging event with a text message."""
    return {
        "sender": {"id": psid},
        "recipient": {"id": "1234567890"},
        "timestamp": 1732262400000,
        "message": {"mid": mid, "text": text},
    }


def telegram(update_id: int, message_id: int, text: str, user_id: int = 111111111) -> bytes:
    """A Telegram Update with a private-chat message."""
    doc = {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": {
                "id": user_id,
                "is_bot": False,
                "first_name": "Иван",
                "last_name": "Петров",
                "language_code": "ru",
            },
            "chat": {"id": user_id, "first_name": "Иван", "type": "private"},
            "date": 1732262400,
            "text": text,
        },
    }
    return json.dumps(doc, ensure_ascii=False).encode()


def twilio_sign(token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature of a form post."""
    return twilio_signature(token, url, params)


def twilio_sms(sid: str, body: str, sender: str = "+40721234567") -> dict[str, str]:
    """An inbound SMS form as Twilio posts it."""
    return {
        "ToCountry": "RO",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": "+40312345678",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature field."""
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def b64(text: str, charset: str) -> str:
    """Base64 of text in a charset (for MIME bodies)."""
    return base64.b64encode(text.encode(charset)).decode()
