"""Request and response bodies of notifier's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sbcontracts.events.common import Instant

CHANNELS = ("whatsapp", "sms", "email", "telegram", "messenger")
LANG = r"^[a-z]{2}$"


class PolicyIn(BaseModel):
    """A tenant's notification policy (omitted fields keep their defaults)."""

    model_config = ConfigDict(extra="forbid")
    quiet_start: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    quiet_end: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    cap: int | None = Field(default=None, ge=1, le=100)
    cap_window: int | None = Field(default=None, ge=60, le=30 * 86400, description="Seconds")
    fallback_order: list[str] | None = Field(default=None, min_length=1, max_length=5)
    estimate_margin: int | None = Field(default=None, ge=0, le=30 * 86400, description="Seconds")
    stall_default: int | None = Field(default=None, ge=3600, le=30 * 86400, description="Seconds")
    stall_floor: int | None = Field(default=None, ge=3600, le=30 * 86400, description="Seconds")
    stall_min_samples: int | None = Field(default=None, ge=1, le=100_000)
    stall_factor: float | None = Field(default=None, ge=1.0, le=10.0)
    delivery_timeout: int | None = Field(default=None, ge=60, le=7 * 86400, description="Seconds")
    default_language: str | None = Field(default=None, pattern=LANG)

    @field_validator("fallback_order")
    @classmethod
    def _known_channels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            unknown = [c for c in value if c not in CHANNELS]
            if unknown or len(set(value)) != len(value):
                raise ValueError(f"channels must be distinct, of {CHANNELS}")
        return value


class TemplateIn(BaseModel):
    """A message template in one language ($order_id, $estimate, $tracking_url are filled in)."""

    model_config = ConfigDict(extra="forbid")
    language: str = Field(pattern=LANG)
    subject: str = Field(min_length=1, max_length=998)
    body: str = Field(min_length=1, max_length=5000)


class PreviewIn(BaseModel):
    """Sample values for a template preview."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(default="10045", max_length=200)
    estimate: Instant | None = None
    tracking_url: str = Field(default="https://track.example.com/dhl/JD0123", max_length=2000)


class NotificationOut(BaseModel):
    """A notification and every decision taken about it, with reasons."""

    id: str
    customer_id: str
    order_id: str | None
    shipment_id: str
    episode: int
    delay_reason: str
    status: str
    reason: str
    channel: str | None
    channels_left: list[str]
    not_before: datetime | None
    provider: str | None
    provider_message_id: str | None
    attempts: int
    note: str | None
    history: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
