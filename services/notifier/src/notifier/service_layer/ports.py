"""Ports the use cases need: a sender of messages through providers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Outgoing:
    """One message to send; the idempotency key makes a resend after a crash a no-op at the provider."""

    tenant: str
    channel: str
    recipient: str
    subject: str
    text: str
    idempotency_key: str


@dataclass(frozen=True)
class Accepted:
    """A provider accepted a message."""

    provider: str
    provider_message_id: str


class SendFailed(Exception):
    """The provider refused the message or could not be reached (after bounded retries)."""


class Sender(Protocol):
    """Sends messages through HTTP providers; channels it has no provider for go to adapters."""

    def handles(self, channel: str) -> bool:
        """Whether an HTTP provider is configured for this channel."""
        ...

    async def send(self, message: Outgoing) -> Accepted:
        """Send one message or raise SendFailed."""
        ...


class NoProviders:
    """A sender without providers: every channel goes through sb.outbound.v1 to adapters."""

    def handles(self, channel: str) -> bool:
        """No channel has an HTTP provider."""
        return False

    async def send(self, message: Outgoing) -> Accepted:
        """Never called."""
        raise SendFailed("no provider")
