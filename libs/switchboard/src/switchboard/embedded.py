"""Embedded mode: all five services in one process, one local bus, SQLite files under .data/."""

from __future__ import annotations

from fastapi import FastAPI

import analytics.bootstrap
import crm.bootstrap
import ingest.bootstrap
import notifier.bootstrap
import routing.bootstrap
from analytics.config import AnalyticsSettings
from crm.config import CrmSettings
from ingest.config import IngestSettings
from notifier.config import NotifierSettings
from routing.config import RoutingSettings
from sbkit.runtime import BuiltService
from sbkit.settings import KitSettings
from sbkit.web import create_app as create_service_app
from sbkit.wiring import build_bus, build_verifier


def create_app(settings: KitSettings | None = None) -> FastAPI:
    """The all-in-one app; the same URLs as five separate services behind an ingress."""
    settings = settings or KitSettings(service="switchboard")
    bus = build_bus(settings)
    # The services share the given kit settings (data dir, bus, keys, polling); their own
    # fields still come from the environment. Only explicitly set values are passed on, so
    # a field left at its default does not override the service's own environment/default.
    shared = settings.model_dump(exclude={"service"}, exclude_unset=True)
    services: list[BuiltService] = [
        ingest.bootstrap.bootstrap(IngestSettings(**shared), bus=bus),
        crm.bootstrap.bootstrap(CrmSettings(**shared), bus=bus),
        routing.bootstrap.bootstrap(RoutingSettings(**shared), bus=bus),
        analytics.bootstrap.bootstrap(AnalyticsSettings(**shared), bus=bus),
        notifier.bootstrap.bootstrap(NotifierSettings(**shared), bus=bus),
    ]
    return create_service_app(
        title="switchboard",
        runtimes=[s.runtime for s in services],
        routers=[r for s in services for r in s.routers],
        bus=bus,
        verifier=build_verifier(settings),
    )
