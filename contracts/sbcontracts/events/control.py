"""Control-plane events: tenants and token revocations, read by every service to verify tokens locally."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from sbcontracts.envelope import EventData
from sbcontracts.events.common import Instant
from sbcontracts.topics import CONTROL


class TenantCreated(EventData):
    """A tenant was registered."""

    event_type: ClassVar[str] = "com.switchboard.control.tenant.created"
    topic: ClassVar[str] = CONTROL.name
    tenant_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class TokenRevoked(EventData):
    """An access token was revoked; every service refuses it from now on."""

    event_type: ClassVar[str] = "com.switchboard.control.token.revoked"
    topic: ClassVar[str] = CONTROL.name
    token_id: str = Field(min_length=1, max_length=64)
    tenant_id: str = Field(min_length=1, max_length=64)
    expires_at: Instant | None = None
