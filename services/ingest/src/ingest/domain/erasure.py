"""What a stored message keeps once its sender was erased: ids and facts, none of the person."""

from __future__ import annotations

from typing import Any

ERASED = "erased"
# Facts about the delivery, not the person: ids (redeliveries stay out), channel, provider, times,
# the inbox it came to (ours) and the language (counted by analytics).
_KEPT = (
    "message_id", "channel", "provider", "provider_message_id", "provider_timestamp",
    "provider_sequence", "received_at", "inbox", "language",
)  # fmt: skip


def scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """The normalised message without its sender's handle, name, words, attachments and thread
    (email Message-IDs may embed an address); still a valid MessageReceived; idempotent."""
    kept = {k: payload[k] for k in _KEPT if k in payload}
    sender = payload.get("sender") or {}
    return {
        **kept,
        "sender": {"kind": sender.get("kind", "external"), "value": ERASED, "scope": None},
        "display_name": None,
        "thread": {},
        "subject": None,
        "text": "",
        "body": "",
        "attachments": [],
    }
