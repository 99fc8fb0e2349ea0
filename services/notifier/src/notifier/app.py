"""The notifier service as its own process (local stack, Kubernetes)."""

from __future__ import annotations

from fastapi import FastAPI

from notifier.bootstrap import bootstrap
from notifier.config import NotifierSettings
from sbkit.web import standalone_app
from sbkit.wiring import build_verifier


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    """Build the app from the environment."""
    settings = settings or NotifierSettings()
    service = bootstrap(settings)
    return standalone_app(service.runtime, service.routers, build_verifier(settings))
