"""The ingest service as its own process (local stack, Kubernetes)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from ingest.bootstrap import bootstrap
from ingest.config import IngestSettings
from sbkit.bus.ports import Bus
from sbkit.web import create_app as create_service_app
from sbkit.wiring import build_verifier

# Young garbage is collected after 10,000 new container objects (CPython: 700). At 700 the
# collector ran every few webhooks and promoted objects of requests still waiting for their
# group commit, whose older-generation scans then took up to ~35 ms. 50,000 tried next made
# each young collection walk ~40,000 objects: one 15-35 ms pause every ~10 s at 500 req/s,
# the bench's p99 stall. The collections were driven by the outbox relay's per-run statements
# (cyclic garbage, now built once) and the lifespan's objects sat young until then (now
# frozen at startup, `sbkit.serve`), so at 10,000 a young collection is rare and a few ms.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_collector() -> None:
    """Set the garbage collector's thresholds for a busy server process (`python -m ingest`)."""
    gc.set_threshold(*GC_THRESHOLDS)


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
