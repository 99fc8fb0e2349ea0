"""Value types shared by several events: channels, handles, instants."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


def _within_range(at: datetime) -> datetime:
    """Refuse instants outside 1970-9000 (compared as UTC, so 0001-01-01T00:00+01:00 is refused
    without being converted): every consumer adds windows and grace periods to them, and a
    datetime that overflows there would dead-letter a record its producer accepted."""
    if not EARLIEST <= at < LATEST:
        raise ValueError(f"must be between {EARLIEST.year} and {LATEST.year}")
    return at


Instant = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""A point in time with its offset, between 1970 and 9000: every datetime of an event or an API."""


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
