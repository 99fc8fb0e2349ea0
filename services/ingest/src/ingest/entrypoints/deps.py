"""What the ingest entrypoints share: the runtime, settings and the tenant rate limiter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import Request

from ingest.adapters.secret_box import SecretBox
from ingest.config import IngestSettings
from ingest.domain.channels import ChannelConfig
from ingest.service_layer.intake import IntakeGroup
from ingest.service_layer.messages import Context
from sbkit.ratelimit import TenantRateLimiter
from sbkit.runtime import ServiceRuntime

CHANNEL_TTL_S = 5.0


@dataclass
class ChannelCache:
    """Webhook channel lookups kept for a few seconds (a change reaches other replicas in 5 s)."""

    ttl_s: float = CHANNEL_TTL_S
    _items: dict[tuple[str, str, str], tuple[float, ChannelConfig]] = field(default_factory=dict)
    _loading: dict[tuple[str, str, str], asyncio.Future[ChannelConfig]] = field(
        default_factory=dict
    )

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

    async def load(
        self, key: tuple[str, str, str], fetch: Callable[[], Awaitable[ChannelConfig]]
    ) -> ChannelConfig:
        """Fetch and remember a channel; concurrent misses of one key share a single fetch.

        When the entry expires under load, hundreds of requests would otherwise all query it.
        """
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(fetch())
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        config = await asyncio.shield(pending)
        self.put(key, config)
        return config


@dataclass
class IngestDeps:
    """The ports the HTTP routes and consumers of ingest use."""

    runtime: ServiceRuntime
    settings: IngestSettings
    limiter: TenantRateLimiter
    intake: IntakeGroup
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
