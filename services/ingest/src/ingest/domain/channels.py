"""Channel configurations: what each provider kind needs, and its write-only secrets."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sbcontracts.events.common import Channel


class ChannelKind(StrEnum):
    """The provider integrations a tenant can configure."""

    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    TELEGRAM = "telegram"
    TWILIO_SMS = "twilio_sms"
    TWILIO_VOICE = "twilio_voice"
    MAILGUN = "mailgun"
    EMAIL = "email"


# Which secrets authenticate each kind's webhooks (all write-only).
REQUIRED_SECRETS: dict[ChannelKind, tuple[str, ...]] = {
    ChannelKind.WHATSAPP: ("app_secret", "verify_token"),
    ChannelKind.MESSENGER: ("app_secret", "verify_token"),
    ChannelKind.TELEGRAM: ("secret_token",),
    ChannelKind.TWILIO_SMS: ("auth_token",),
    ChannelKind.TWILIO_VOICE: ("auth_token",),
    ChannelKind.MAILGUN: ("signing_key",),
    ChannelKind.EMAIL: ("signing_secret",),
}

MESSAGE_CHANNEL: dict[ChannelKind, Channel] = {
    ChannelKind.WHATSAPP: Channel.WHATSAPP,
    ChannelKind.MESSENGER: Channel.MESSENGER,
    ChannelKind.TELEGRAM: Channel.TELEGRAM,
    ChannelKind.TWILIO_SMS: Channel.SMS,
    ChannelKind.TWILIO_VOICE: Channel.VOICE,
    ChannelKind.MAILGUN: Channel.EMAIL,
    ChannelKind.EMAIL: Channel.EMAIL,
}


@dataclass(frozen=True)
class ChannelConfig:
    """One configured channel of a tenant; `secrets` never leave the service."""

    id: str
    tenant_id: str
    kind: ChannelKind
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def region(self) -> str | None:
        """Default region for national phone numbers (ISO 3166 alpha-2)."""
        value = self.settings.get("default_region")
        return str(value) if value else None

    @property
    def languages(self) -> list[str]:
        """Extra languages this channel's customers write in."""
        return [str(x) for x in self.settings.get("languages") or []]

    def secret(self, name: str) -> str:
        """A configured secret ('' when missing, which never verifies)."""
        return self.secrets.get(name, "")

    def webhook_path(self) -> str:
        """Where the provider posts for this channel."""
        return f"/v1/webhooks/{self.tenant_id}/{self.kind.value}/{self.id}"


def missing_secrets(kind: ChannelKind, secrets: dict[str, str]) -> list[str]:
    """The required secrets of `kind` that are not set."""
    return [name for name in REQUIRED_SECRETS[kind] if not secrets.get(name)]
