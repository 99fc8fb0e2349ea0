"""The routing service as its own process (local stack, Kubernetes)."""

from __future__ import annotations

from fastapi import FastAPI

from routing.bootstrap import bootstrap
from routing.config import RoutingSettings
from sbkit.web import standalone_app
from sbkit.wiring import build_verifier


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    """Build the app from the environment."""
    settings = settings or RoutingSettings()
    service = bootstrap(settings)
    return standalone_app(service.runtime, service.routers, build_verifier(settings))
