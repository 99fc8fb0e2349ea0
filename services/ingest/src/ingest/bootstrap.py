"""Composition root of the ingest service: the only place its adapters are built (tests pass fakes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from ingest.adapters import orm
from ingest.adapters.secret_box import SecretBox
from ingest.config import IngestSettings
from ingest.domain.language import warm_up
from ingest.entrypoints.consumers import register_consumers
from ingest.entrypoints.deps import IngestDeps
from ingest.entrypoints.http_channels import channels_router
from ingest.entrypoints.http_messages import messages_router
from ingest.entrypoints.http_signals import signals_router
from ingest.entrypoints.webhooks_forms import forms_webhooks_router
from ingest.entrypoints.webhooks_json import json_webhooks_router
from ingest.service_layer.intake import intake_group
from sbkit.bus.ports import Bus
from sbkit.ratelimit import TenantRateLimiter
from sbkit.runtime import ServiceRuntime
from sbkit.wiring import build_bus

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class IngestService:
    """The built service: its runtime and its HTTP routers."""

    runtime: ServiceRuntime
    deps: IngestDeps
    routers: list[APIRouter] = field(default_factory=list)


def bootstrap(settings: IngestSettings | None = None, *, bus: Bus | None = None) -> IngestService:
    """Build the ingest service from settings; `bus` is shared in embedded mode."""
    settings = settings or IngestSettings()
    runtime = ServiceRuntime(
        settings,
        metadata=orm.metadata,
        tables=orm.kit,
        migrations=MIGRATIONS,
        bus=bus or build_bus(settings),
    )
    limiter = TenantRateLimiter(rate=settings.ingest_rate_per_s, burst=settings.ingest_rate_burst)
    key = settings.ingest_secrets_key
    box = SecretBox(key.get_secret_value() if key else None)
    intake = intake_group(runtime.uow, in_flight=settings.ingest_commit_groups_in_flight)
    deps = IngestDeps(runtime=runtime, settings=settings, limiter=limiter, intake=intake, box=box)
    routers = [  # routes are matched in order: the busiest (provider webhooks) first
        json_webhooks_router(deps),
        forms_webhooks_router(deps),
        messages_router(deps),
        channels_router(deps),
        signals_router(deps),
    ]
    register_consumers(deps)
    warm_up(frozenset(settings.ingest_languages))
    return IngestService(runtime=runtime, routers=routers, deps=deps)
