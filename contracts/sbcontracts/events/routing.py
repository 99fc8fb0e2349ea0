"""Events routing publishes about cases (tickets): lifecycle, classification, assignment, SLA."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from sbcontracts.envelope import EventData
from sbcontracts.events.common import Channel, Instant
from sbcontracts.topics import AGENTS, TICKETS


class TicketStatus(StrEnum):
    """Case statuses."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Category(StrEnum):
    """Contact reasons."""

    DELIVERY_DELAY = "delivery_delay"
    DAMAGED_PARCEL = "damaged_parcel"
    RETURNS = "returns"
    BILLING = "billing"
    TECHNICAL = "technical"
    ACCOUNT = "account"
    OTHER = "other"


class Sentiment(StrEnum):
    """How the customer sounds."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Priority(StrEnum):
    """Case priority (urgent first)."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class SlaMetric(StrEnum):
    """The SLA targets a case is timed against."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class TicketData(EventData):
    """Fields every ticket event carries (durations in integer milliseconds)."""

    ticket_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    cycle: int = Field(default=1, ge=1, description="Case cycle; a reopen starts a new one")
    queue: str | None = Field(default=None, max_length=100)
    channel: Channel | None = None
    agent_id: str | None = Field(default=None, max_length=100)
    occurred_at: Instant


class TicketOpened(TicketData):
    """A new case was opened from an inbound message (or an abandoned call: a callback)."""

    event_type: ClassVar[str] = "com.switchboard.ticket.opened"
    topic: ClassVar[str] = TICKETS.name
    first_message_id: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=998)
    order_id: str | None = Field(default=None, max_length=200)
    kind: str = Field(default="case", max_length=20, description="case or callback")


class TicketMessageAdded(TicketData):
    """A message joined the case (customer message, agent reply or internal note)."""

    event_type: ClassVar[str] = "com.switchboard.ticket.message_added"
    topic: ClassVar[str] = TICKETS.name
    message_id: str = Field(min_length=1, max_length=64)
    direction: str = Field(pattern="^(inbound|outbound|internal)$")


class TicketClassified(TicketData):
    """Category, sentiment, priority and language were (re)assessed."""

    event_type: ClassVar[str] = "com.switchboard.ticket.classified"
    topic: ClassVar[str] = TICKETS.name
    category: Category
    sentiment: Sentiment
    priority: Priority
    language: str | None = Field(default=None, max_length=8)
    confidence: float = Field(default=1.0, ge=0, le=1)


class TicketAssigned(TicketData):
    """An agent claimed the case (agent_id); wait_ms counts from when it was queued."""

    event_type: ClassVar[str] = "com.switchboard.ticket.assigned"
    topic: ClassVar[str] = TICKETS.name
    previous_agent_id: str | None = Field(default=None, max_length=100)
    wait_ms: int = Field(default=0, ge=0)
    policy: str | None = Field(default=None, max_length=50)
    reason: str | None = Field(default=None, max_length=200, description="Why this agent")
    candidates_considered: int = Field(default=0, ge=0, description="Agents looked at")
    eligible_agents: tuple[str, ...] = Field(
        default=(), max_length=20, description="The best eligible agents, in policy order"
    )


class TicketAgentReplied(TicketData):
    """An agent answered the customer; response_ms since the customer message it answers."""

    event_type: ClassVar[str] = "com.switchboard.ticket.agent_replied"
    topic: ClassVar[str] = TICKETS.name
    message_id: str = Field(min_length=1, max_length=64)
    first_response: bool = False
    response_ms: int = Field(default=0, ge=0)
    business_response_ms: int | None = Field(default=None, ge=0)


class TicketTransferred(TicketData):
    """The case moved to another queue (escalation, fallback or by an agent)."""

    event_type: ClassVar[str] = "com.switchboard.ticket.transferred"
    topic: ClassVar[str] = TICKETS.name
    from_queue: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=200)


class TicketStatusChanged(TicketData):
    """The case's status changed."""

    event_type: ClassVar[str] = "com.switchboard.ticket.status_changed"
    topic: ClassVar[str] = TICKETS.name
    from_status: TicketStatus
    to_status: TicketStatus


class TicketResolved(TicketData):
    """The case was resolved; resolution_ms from the cycle's first customer message."""

    event_type: ClassVar[str] = "com.switchboard.ticket.resolved"
    topic: ClassVar[str] = TICKETS.name
    resolution_ms: int = Field(default=0, ge=0)
    business_resolution_ms: int | None = Field(default=None, ge=0)
    category: Category | None = None


class TicketReopened(TicketData):
    """The customer wrote within the reopen window: a new cycle of the same case."""

    event_type: ClassVar[str] = "com.switchboard.ticket.reopened"
    topic: ClassVar[str] = TICKETS.name


class TicketSlaWarning(TicketData):
    """An SLA target is about to be missed."""

    event_type: ClassVar[str] = "com.switchboard.ticket.sla_warning"
    topic: ClassVar[str] = TICKETS.name
    metric: SlaMetric
    due_at: Instant


class TicketSlaBreached(TicketData):
    """An SLA target was missed."""

    event_type: ClassVar[str] = "com.switchboard.ticket.sla_breached"
    topic: ClassVar[str] = TICKETS.name
    metric: SlaMetric
    due_at: Instant


class AgentPresenceChanged(EventData):
    """An agent went online, away (an aux state) or offline; `occurred_at` is when."""

    event_type: ClassVar[str] = "com.switchboard.agent.presence_changed"
    topic: ClassVar[str] = AGENTS.name
    agent_id: str = Field(min_length=1, max_length=100)
    presence: str = Field(pattern="^(online|away|offline)$")
    previous: str | None = Field(default=None, pattern="^(online|away|offline)$")
    occurred_at: Instant
