"""Request and response bodies of crm's HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sbcontracts.events.common import Channel, HandleKind

_STRICT = ConfigDict(extra="forbid")
_ZONES = available_timezones()


class HandleIn(BaseModel):
    """A handle as given by a client (normalised by the server)."""

    model_config = _STRICT
    kind: HandleKind
    value: str = Field(min_length=1, max_length=320)
    scope: str | None = Field(default=None, max_length=200)


class ConsentIn(BaseModel):
    """Consent (or its withdrawal) for one channel and purpose."""

    model_config = _STRICT
    channel: Channel
    purpose: Literal["service", "marketing"]
    granted: bool


class Profile(BaseModel):
    """Attributes and preferences an agent may set."""

    model_config = _STRICT
    name: str | None = Field(default=None, min_length=1, max_length=300)
    language: str | None = Field(default=None, pattern="^[a-z]{2}$", description="ISO 639-1")
    timezone: str | None = Field(default=None, max_length=64, description="IANA time zone")
    preferred_channel: Channel | None = None
    tier: str | None = Field(default=None, min_length=1, max_length=50)
    attributes: dict[str, str] = Field(default_factory=dict, max_length=50)
    consents: list[ConsentIn] = Field(default_factory=list, max_length=50)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None and v not in _ZONES:
            raise ValueError("not an IANA time zone")
        return str(ZoneInfo(v)) if v else v

    @field_validator("attributes")
    @classmethod
    def _keys(cls, v: dict[str, str]) -> dict[str, str]:
        for k, value in v.items():
            if not k.isidentifier() or len(k) > 50 or len(value) > 1000:
                raise ValueError(f"attribute {k!r}: names are identifiers, values ≤ 1000 chars")
        return v

    def values(self) -> dict[str, str]:
        """Every attribute to record, preferences included."""
        named = {
            "name": self.name,
            "language": self.language,
            "timezone": self.timezone,
            "preferred_channel": self.preferred_channel.value if self.preferred_channel else None,
            "tier": self.tier,
        }
        return {**self.attributes, **{k: v for k, v in named.items() if v is not None}}


class CustomerIn(Profile):
    """A new customer: its handles and profile."""

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    handles: list[HandleIn] = Field(default_factory=list, max_length=20)


class LinkIn(BaseModel):
    """One handle to link: an email, a phone or any other handle."""

    model_config = _STRICT
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    handle: HandleIn | None = None


class MergeIn(BaseModel):
    """The customer to merge into the one in the path."""

    model_config = _STRICT
    other_id: str = Field(min_length=1, max_length=64)


class Identity(BaseModel):
    """A handle on a card, with where it came from."""

    kind: str
    value: str
    scope: str | None
    source: str
    source_ref: str
    linked_at: datetime


class Card(BaseModel):
    """The customer card (`requested_id` differs from `id` when the id was merged away)."""

    id: str
    requested_id: str
    merged_ids: list[str]
    identities: list[Identity]
    attributes: dict[str, dict[str, Any]]
    name: str | None
    language: str | None
    timezone: str | None
    preferred_channel: str | None
    tier: str | None
    consents: list[dict[str, Any]]
    created_at: datetime
    tenure_days: int
    orders: list[dict[str, Any]]
    open_tickets: list[dict[str, Any]]
    last_contact: dict[str, Any] | None


class TimelinePage(BaseModel):
    """A page of the timeline, newest first."""

    customer_id: str
    entries: list[dict[str, Any]]
    next_cursor: str | None


class MergeOut(BaseModel):
    """A merge and exactly what it moved."""

    id: str
    survivor_id: str
    merged_id: str
    provenance: dict[str, Any]
    moved: dict[str, list[int]]
    created_at: datetime
    undone_at: datetime | None
    undo_provenance: dict[str, Any] | None


class LinkOut(BaseModel):
    """Where the handle ended up, and the merge it caused if any."""

    customer_id: str
    merge_id: str | None


class Erased(BaseModel):
    """What was erased."""

    customer_id: str
    erased_ids: list[str]
    erased_at: datetime
