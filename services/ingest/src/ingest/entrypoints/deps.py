"""What the ingest entrypoints share: the runtime, settings and the tenant rate limiter."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastapi import Request

from ingest.adapters.secret_box import SecretBox
from ingest.config import IngestSettings
from ingest.domain.channels import ChannelConfig
from ingest.entrypoints.ratelimit import TenantRateLimiter
from ingest.service_layer.messages import Context
from sbkit.runtime import ServiceRuntime

CHANNEL_TTL_S = 5.0


@dataclass
class ChannelCache:
    """Webhook channel lookups kept for a few seconds (a change reaches other replicas in 5 s)."""

    ttl_s: float = CHANNEL_TTL_S
    _items: dict[tuple[str, str, str], tuple[float, ChannelConfig]] = field(default_factory=dict)

    def get(self, key: tuple[str, str, str]) -> ChannelConfig | None:
        """A fresh cached channel, or None."""
        found = self._items.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: tuple[str, str, str], config: ChannelConfig) -> None:
        """Remember a channel (bounded: cleared when it grows past 10,000 entries)."""
        if len(self._items) > 10_000:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl_s, config)

    def clear(self) -> None:
        """Forget everything (after a channel changed in this process)."""
        self._items.clear()


@dataclass
class IngestDeps:
    """The ports the HTTP routes and consumers of ingest use."""

    runtime: ServiceRuntime
    settings: IngestSettings
    limiter: TenantRateLimiter
    channels: ChannelCache = field(default_factory=ChannelCache)
    box: SecretBox = field(default_factory=SecretBox)

    def context(
        self,
        tenant_id: str,
        *,
        request: Request | None = None,
        region: str | None = None,
        languages: list[str] | None = None,
    ) -> Context:
        """The normalisation context of a tenant (channel region and languages added)."""
        langs = frozenset([*self.settings.ingest_languages, *(languages or [])])
        correlation = request.headers.get("x-correlation-id") if request else None
        return Context(tenant_id, region, langs, correlation_id=correlation)
