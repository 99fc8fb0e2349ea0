"""The ingest service as its own process (local stack, Kubernetes)."""

from __future__ import annotations

from fastapi import FastAPI

from ingest.bootstrap import bootstrap
from ingest.config import IngestSettings
from sbkit.bus.ports import Bus
from sbkit.web import create_app as create_service_app
from sbkit.wiring import build_verifier


def create_app(settings: IngestSettings | None = None, *, bus: Bus | None = None) -> FastAPI:
    """Build the app from the environment (with ingest's own body limit: raw MIME is large).

    Ready while its database answers, Kafka or not: a webhook is accepted into the outbox,
    so taking ingest out of the load balancer during a broker outage would only turn
    accepted-later into refused-now (providers' retries are limited)."""
    settings = settings or IngestSettings()
    service = bootstrap(settings, bus=bus)
    return create_service_app(
        title=service.runtime.name,
        runtimes=[service.runtime],
        routers=service.routers,
        bus=service.runtime.bus,
        verifier=build_verifier(settings),
        max_body_bytes=settings.ingest_max_body_bytes,
        ready_without_bus=True,  # webhooks need only the database: stay in rotation
        rate_limiter=service.deps.limiter,  # API calls and webhooks share a tenant's bucket
    )
