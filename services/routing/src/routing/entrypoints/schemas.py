"""HTTP bodies of routing's API (validated: nonsense capacity or skills is a 422)."""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from routing.domain.agents import Policy, Presence
from sbcontracts.events.common import Instant

_STRICT = ConfigDict(extra="forbid")
Level = Field(ge=1, le=5)
Seconds = Field(default=None, ge=1, le=365 * 24 * 3600)


class FilterIn(BaseModel):
    """One ordered filter; empty lists match anything."""

    model_config = _STRICT
    categories: list[str] = []
    languages: list[str] = []
    channels: list[str] = []
    tiers: list[str] = []


class SkillIn(BaseModel):
    """A skill requirement."""

    model_config = _STRICT
    skill: str = Field(min_length=1, max_length=50)
    level: int = Level


class RelaxIn(BaseModel):
    """After `after_s` seconds, lower requirements by `lower_by` levels."""

    model_config = _STRICT
    after_s: int = Field(ge=1)
    lower_by: int = Field(ge=1, le=5)


class SlaIn(BaseModel):
    """Targets of one priority in business seconds."""

    model_config = _STRICT
    first_response_s: int | None = Seconds
    next_response_s: int | None = Seconds
    resolution_s: int | None = Seconds


class HoursIn(BaseModel):
    """A business-hours calendar: IANA zone, weekday (0=Mon) → [["09:00","17:00"]], holidays."""

    model_config = _STRICT
    tz: str = "UTC"
    weekly: dict[int, list[tuple[time, time]]] = {}
    holidays: list[date] = []

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _spans(self) -> HoursIn:
        for day, spans in self.weekly.items():
            if not 0 <= day <= 6:
                raise ValueError("weekday must be 0 (Monday) to 6")
            if any(b != time(0) and b <= a for a, b in spans):
                raise ValueError("each span must end after it starts")
        return self


class QueueIn(BaseModel):
    """A queue's full configuration."""

    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    position: int = Field(default=100, ge=0, le=1_000_000)
    policy: Policy = Policy.LONGEST_IDLE
    filters: list[FilterIn] = []
    skills: list[SkillIn] = []
    relax: list[RelaxIn] = []
    sla: dict[Literal["urgent", "high", "normal", "low"], SlaIn] = {}
    hours: HoursIn | None = None
    auto_reply: str | None = Field(default=None, max_length=2000)
    fallback_queue: str | None = Field(default=None, max_length=100)
    escalate_after_s: int | None = Seconds
    callback: bool = Field(default=False, description="Abandoned calls open callback cases here")

    def config(self) -> dict[str, Any]:
        """The JSON stored for the queue."""
        return self.model_dump(mode="json", exclude={"name", "position", "policy"})


class QueueOut(QueueIn):
    """A queue as stored."""

    model_config = ConfigDict(extra="ignore")
    id: str


class AgentIn(BaseModel):
    """An agent's profile: skills and languages with proficiency 1-5, capacity units, queues."""

    model_config = _STRICT
    name: str = Field(min_length=1, max_length=200)
    capacity: int = Field(
        default=100, ge=10, le=1000, description="Units: call 100, chat 25, email 10"
    )
    skills: dict[str, int] = {}
    languages: dict[str, int] = {}
    queues: list[str] = Field(default=[], description="Empty: every queue")

    @field_validator("skills", "languages")
    @classmethod
    def _levels(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [
            k for k, v in value.items() if not 1 <= v <= 5 or not re.fullmatch(r"[\w.-]{1,50}", k)
        ]
        if bad:
            raise ValueError(f"proficiency must be 1-5 for {bad}")
        return value


class AgentOut(AgentIn):
    """An agent with live state."""

    model_config = ConfigDict(extra="ignore")
    id: str
    presence: Presence
    load: int


class PresenceIn(BaseModel):
    """Set presence."""

    model_config = _STRICT
    presence: Presence


class RuleIn(BaseModel):
    """A classification rule (a regular expression voting for a category)."""

    model_config = _STRICT
    category: Literal[
        "delivery_delay", "damaged_parcel", "returns", "billing", "technical", "account", "other"
    ]
    pattern: str = Field(min_length=1, max_length=500)
    language: str | None = Field(default=None, max_length=8)
    weight: float = Field(default=1.0, gt=0, le=10)

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


class RulesIn(BaseModel):
    """The tenant's whole rule set (empty: back to the built-in rules)."""

    model_config = _STRICT
    rules: list[RuleIn] = Field(default=[], max_length=2000)


class ReplyIn(BaseModel):
    """An agent's answer to the customer."""

    model_config = _STRICT
    agent_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=100_000)
    status: Literal["pending", "open"] = "pending"


class NoteIn(BaseModel):
    """An internal note."""

    model_config = _STRICT
    agent_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=100_000)


class AssignIn(BaseModel):
    """Give the ticket to this agent."""

    model_config = _STRICT
    agent_id: str = Field(min_length=1, max_length=100)


class TransferIn(BaseModel):
    """Move the ticket to another queue."""

    model_config = _STRICT
    queue_id: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(default=None, max_length=200)


class StatusIn(BaseModel):
    """Change status."""

    model_config = _STRICT
    status: Literal["open", "pending", "resolved", "closed"]


class MessageOut(BaseModel):
    """One entry of a ticket's cross-channel history."""

    message_id: str
    direction: str
    channel: str | None
    author: str | None
    text: str
    at: Instant


class TicketOut(BaseModel):
    """A ticket."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)
    id: str
    customer_id: str
    kind: str
    status: str
    cycle: int
    queue_id: str | None
    agent_id: str | None
    channel: str
    category: str
    sentiment: str
    priority: str
    language: str | None
    subject: str | None
    created_at: Instant
    updated_at: Instant
    messages: list[MessageOut] | None = None
