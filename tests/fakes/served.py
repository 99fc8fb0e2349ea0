"""A service's app served in-process: its lifespan run, an HTTP client over ASGI, tokens checked
against a test keyring."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Protocol

import httpx
from fastapi import APIRouter

from sbkit.auth import Keyring, TokenVerifier
from sbkit.runtime import ServiceRuntime
from sbkit.web import standalone_app


class Service(Protocol):
    """What every service's bootstrap returns, as far as serving it goes."""

    @property
    def runtime(self) -> ServiceRuntime: ...

    @property
    def routers(self) -> Sequence[APIRouter]: ...


@contextlib.asynccontextmanager
async def served(
    service: Service, keys: Path, base_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Keyring]]:
    """The app of `service` as `python -m <service>` builds it, started and stopped around the
    block; the keyring in `keys` signs the tests' tokens."""
    ring = Keyring.load(keys)
    app = standalone_app(service.runtime, service.routers, TokenVerifier(ring))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client, ring
