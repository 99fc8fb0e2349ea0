"""The analytics service as its own process (local stack, Kubernetes)."""

from __future__ import annotations

from fastapi import FastAPI

from analytics.bootstrap import bootstrap
from analytics.config import AnalyticsSettings
from sbkit.web import standalone_app
from sbkit.wiring import build_verifier


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    """Build the app from the environment."""
    settings = settings or AnalyticsSettings()
    service = bootstrap(settings)
    return standalone_app(service.runtime, service.routers, build_verifier(settings))
