"""CloudEvents 1.0 envelope with Switchboard's extension attributes (tenantid, correlationid, causationid)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sbcontracts.events.common import Instant

SOURCE_PREFIX = "urn:switchboard:"


class EventData(BaseModel):
    """Base of every event payload: frozen, strict about unknown fields, bound to one type and topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]
    topic: ClassVar[str]


D = TypeVar("D", bound=BaseModel)


class CloudEvent(BaseModel, Generic[D]):
    """A CloudEvents 1.0 structured-mode envelope; `data` is the typed payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128)
    time: Instant
    subject: str | None = Field(default=None, max_length=256)
    datacontenttype: Literal["application/json"] = "application/json"
    tenantid: str = Field(min_length=1, max_length=64)
    correlationid: str = Field(min_length=1, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)
    data: D


@cache
def envelope_of(data_type: type[BaseModel]) -> type[CloudEvent[Any]]:
    """`CloudEvent[data_type]`, kept for good: pydantic holds parametrized classes only weakly,
    so after a garbage collection every event rebuilt its envelope class (milliseconds each)."""
    return CloudEvent[data_type]  # type: ignore[valid-type]


def new_event(
    data: EventData,
    *,
    tenant_id: str,
    source: str,
    subject: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent[Any]:
    """Wrap a payload in an envelope; ids default to fresh UUIDs, correlation to the event id."""
    eid = event_id or str(uuid.uuid4())
    return envelope_of(type(data))(
        id=eid,
        source=source if source.startswith(SOURCE_PREFIX) else SOURCE_PREFIX + source,
        type=data.event_type,
        time=time or datetime.now(UTC),
        subject=subject,
        tenantid=tenant_id,
        correlationid=correlation_id or eid,
        causationid=causation_id,
        data=data,
    )
