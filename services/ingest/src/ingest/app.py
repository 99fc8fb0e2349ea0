"""The ingest service as its own process (local stack, Kubernetes)."""

from __future__ import annotations

from fastapi import FastAPI

from ingest.bootstrap import bootstrap
from ingest.config import IngestSettings
from sbkit.web import standalone_app
from sbkit.wiring import build_verifier


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    """Build the app from the environment."""
    settings = settings or IngestSettings()
    service = bootstrap(settings)
    return standalone_app(service.runtime, service.routers, build_verifier(settings))
