"""The crm service as its own process (local stack, Kubernetes)."""

from __future__ import annotations

from fastapi import FastAPI

from crm.bootstrap import bootstrap
from crm.config import CrmSettings
from sbkit.web import standalone_app
from sbkit.wiring import build_verifier


def create_app(settings: CrmSettings | None = None) -> FastAPI:
    """Build the app from the environment."""
    settings = settings or CrmSettings()
    service = bootstrap(settings)
    return standalone_app(service.runtime, service.routers, build_verifier(settings))
