"""Request bodies of the call, shipment and survey endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sbcontracts.events.common import Handle, HandleKind, Instant
from sbcontracts.events.ingest import ShipmentStatus, SurveyKind


class HandleIn(BaseModel):
    """A person's identifier as the caller knows it."""

    model_config = ConfigDict(extra="forbid")
    kind: HandleKind
    value: str = Field(min_length=1, max_length=320)
    scope: str | None = Field(default=None, max_length=200)


# A call phase longer than a day is a broken adapter; unbounded values would overflow KPI sums.
Duration = Field(default=0, ge=0, le=86_400_000)


class CallEventIn(BaseModel):
    """One call lifecycle event from a telephony adapter (durations in integer ms)."""

    model_config = ConfigDict(extra="forbid")
    call_id: str = Field(min_length=1, max_length=200)
    event: Literal["offered", "answered", "abandoned", "completed"]
    occurred_at: Instant
    offered_at: Instant | None = None
    queue: str | None = Field(default=None, max_length=100)
    agent_id: str | None = Field(default=None, max_length=100)
    caller: HandleIn | None = None
    wait_ms: int = Duration
    talk_ms: int = Duration
    hold_ms: int = Duration
    wrap_ms: int = Duration
    region: str | None = Field(default=None, pattern="^[A-Za-z]{2}$")


class ShipmentEventIn(BaseModel):
    """A carrier tracking event; `status` overrides the mapping of `carrier_code`."""

    model_config = ConfigDict(extra="forbid")
    shipment_id: str = Field(min_length=1, max_length=200)
    order_id: str | None = Field(default=None, max_length=200)
    carrier: str = Field(min_length=1, max_length=50)
    tracking_number: str = Field(min_length=1, max_length=100)
    carrier_code: str | None = Field(default=None, max_length=50)
    carrier_text: str | None = Field(default=None, max_length=500)
    status: ShipmentStatus | None = None
    location: str | None = Field(default=None, max_length=300)
    occurred_at: Instant
    estimate_from: Instant | None = None
    estimate_to: Instant | None = None

    @model_validator(mode="after")
    def _code_or_status(self) -> ShipmentEventIn:
        if not self.carrier_code and not self.status:
            raise ValueError("carrier_code or status is required")
        return self


class SurveyIn(BaseModel):
    """A survey answer linked to a ticket or a customer."""

    model_config = ConfigDict(extra="forbid")
    response_id: str = Field(min_length=1, max_length=200)
    kind: SurveyKind
    score: int
    ticket_id: str | None = Field(default=None, max_length=64)
    customer_id: str | None = Field(default=None, max_length=64)
    respondent: Handle | None = None
    comment: str | None = Field(default=None, max_length=5000)
    responded_at: Instant

    @model_validator(mode="after")
    def _linked(self) -> SurveyIn:
        if not (self.ticket_id or self.customer_id):
            raise ValueError("ticket_id or customer_id is required")
        return self
