"""Events crm publishes: messages attributed to customers, and customer card changes and merges."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from sbcontracts.envelope import EventData
from sbcontracts.events.common import Handle, Instant
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.topics import CUSTOMERS, MESSAGES_ATTRIBUTED

_FROZEN = ConfigDict(frozen=True, extra="forbid")
OrderId = Annotated[str, Field(min_length=1, max_length=200)]


class MessageAttributed(EventData):
    """An inbound message with the customer it belongs to (in order per customer)."""

    event_type: ClassVar[str] = "com.switchboard.message.attributed"
    topic: ClassVar[str] = MESSAGES_ATTRIBUTED.name
    message: MessageReceived
    customer_id: str = Field(min_length=1, max_length=64)
    is_new_customer: bool = False
    customer_language: str | None = Field(default=None, max_length=8, description="ISO 639-1")
    customer_tier: str | None = Field(default=None, max_length=50)
    recent_order_ids: tuple[OrderId, ...] = Field(
        default=(),
        max_length=5,
        description="The customer's orders placed in the last 30 days, newest first (at most 5)",
    )


class ProvenanceKind(StrEnum):
    """What caused a link or merge."""

    MESSAGE = "message"
    ORDER = "order"
    AGENT = "agent"
    API = "api"


class Provenance(BaseModel):
    """Which handle, order or agent caused a change."""

    model_config = _FROZEN
    kind: ProvenanceKind
    ref: str = Field(min_length=1, max_length=300, description="Message/order id or agent id")
    handle: Handle | None = None


class Consent(BaseModel):
    """A customer's current consent decision for one channel and purpose."""

    model_config = _FROZEN
    channel: str = Field(min_length=1, max_length=20)
    purpose: Literal["service", "marketing"]
    granted: bool
    updated_at: Instant | None = Field(default=None, description="When it was decided")


class CustomerCreated(EventData):
    """A new customer card (from a first message, an order or the API)."""

    event_type: ClassVar[str] = "com.switchboard.customer.created"
    topic: ClassVar[str] = CUSTOMERS.name
    customer_id: str = Field(min_length=1, max_length=64)
    handles: tuple[Handle, ...] = ()
    provenance: Provenance
    created_at: Instant


class CustomerUpdated(EventData):
    """Attributes, preferences or consents of a customer changed (names of the changed fields)."""

    event_type: ClassVar[str] = "com.switchboard.customer.updated"
    topic: ClassVar[str] = CUSTOMERS.name
    customer_id: str = Field(min_length=1, max_length=64)
    fields: tuple[str, ...] = ()
    language: str | None = Field(default=None, max_length=8)
    timezone: str | None = Field(default=None, max_length=64, description="IANA")
    preferred_channel: str | None = Field(default=None, max_length=20)
    tier: str | None = Field(default=None, max_length=50)
    consents: tuple[Consent, ...] = Field(
        default=(),
        description=(
            "The customer's current consents (latest decision per channel and purpose), carried"
            " whenever `fields` names a consent change (`consent.<channel>.<purpose>`);"
            " empty means unchanged, not withdrawn"
        ),
    )
    updated_at: Instant


class CustomerIdentityLinked(EventData):
    """A handle now belongs to a customer."""

    event_type: ClassVar[str] = "com.switchboard.customer.identity_linked"
    topic: ClassVar[str] = CUSTOMERS.name
    customer_id: str = Field(min_length=1, max_length=64)
    handle: Handle
    provenance: Provenance
    linked_at: Instant


class CustomerMerged(EventData):
    """Two customers turned out to be one; `merged_id` now resolves to `survivor_id`."""

    event_type: ClassVar[str] = "com.switchboard.customer.merged"
    topic: ClassVar[str] = CUSTOMERS.name
    merge_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64, description="The survivor")
    survivor_id: str = Field(min_length=1, max_length=64)
    merged_id: str = Field(min_length=1, max_length=64)
    provenance: Provenance
    merged_at: Instant


class CustomerUnmerged(EventData):
    """A merge was undone: both customers live again with their own handles and history."""

    event_type: ClassVar[str] = "com.switchboard.customer.unmerged"
    topic: ClassVar[str] = CUSTOMERS.name
    merge_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64, description="The former survivor")
    survivor_id: str = Field(min_length=1, max_length=64)
    restored_id: str = Field(min_length=1, max_length=64)
    moved_back: tuple[Handle, ...] = Field(default=(), description="Handles returned to restored")
    provenance: Provenance
    unmerged_at: Instant


class CustomerErased(EventData):
    """A customer's personal data was erased: every service must purge what it holds about them."""

    event_type: ClassVar[str] = "com.switchboard.customer.erased"
    topic: ClassVar[str] = CUSTOMERS.name
    customer_id: str = Field(min_length=1, max_length=64)
    erased_ids: tuple[str, ...] = Field(
        default=(), description="Every customer id that resolved to this person (merged-away ids)"
    )
    handle_hashes: tuple[str, ...] = Field(
        default=(),
        description="HMAC-SHA256 under crm's secret of tenant + handle key: opaque, equal for"
        " equal handles (no plain hash a guessed phone number could be checked against)",
    )
    message_ids: tuple[str, ...] = Field(
        default=(),
        description="The person's inbound messages (ingest's opaque ids): the services that keep"
        " messages scrub them by id, since none but crm can compute the handle hashes",
    )
    erased_at: Instant
