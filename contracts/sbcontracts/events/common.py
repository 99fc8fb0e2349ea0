"""Value types shared by several events: channels, handles, time spans."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    """Where a contact happened."""

    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    TELEGRAM = "telegram"
    WEBCHAT = "webchat"
    API = "api"
    VOICE = "voice"


class HandleKind(StrEnum):
    """What kind of identifier a handle is. Phones are shared by SMS, WhatsApp and voice."""

    EMAIL = "email"
    PHONE = "phone"
    MESSENGER = "messenger"
    TELEGRAM = "telegram"
    WEBCHAT = "webchat"
    EXTERNAL = "external"


class Handle(BaseModel):
    """A normalised identifier of a person: email canonical, phone E.164, messenger ids scoped."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: HandleKind
    value: str = Field(min_length=1, max_length=320)
    scope: str | None = Field(
        default=None, max_length=200, description="Page / bot / app id the id is valid in."
    )

    def key(self) -> str:
        """A stable string form (for partition keys and lookups)."""
        return f"{self.kind}:{self.scope + ':' if self.scope else ''}{self.value}"
