"""What the ingest entrypoints share: the runtime, settings and the tenant rate limiter."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ingest.config import IngestSettings
from ingest.entrypoints.ratelimit import TenantRateLimiter
from ingest.service_layer.messages import Context
from sbkit.runtime import ServiceRuntime


@dataclass
class IngestDeps:
    """The ports the HTTP routes and consumers of ingest use."""

    runtime: ServiceRuntime
    settings: IngestSettings
    limiter: TenantRateLimiter

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
