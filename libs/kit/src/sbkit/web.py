"""The FastAPI side of a service: app factory with lifespan, health, metrics, request context."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sbkit.auth import TokenVerifier
from sbkit.bus.ports import Bus
from sbkit.control import revocation_subscription
from sbkit.observability import HTTP_LATENCY, HTTP_REQUESTS
from sbkit.openapi import complete_openapi
from sbkit.problems import error_responses, install_problem_handlers, problem_response
from sbkit.ratelimit import TenantRateLimiter
from sbkit.runtime import ServiceRuntime
from sbkit.settings import KitSettings
from sbkit.tasks import logged_step

log = structlog.get_logger(__name__)


class BodyLimit:
    """Refuse request bodies over a size limit with 413, whether or not Content-Length says so."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(scope, receive, send, self.max_bytes)
            return
        # Without a declared length the body is read up to the limit before the app runs: an
        # error raised from `receive` mid-route would reach the app's own handlers (FastAPI turns
        # it into a 400, BaseHTTPMiddleware into a 500), and a route must never run on part of
        # an oversized body. Buffering is bounded by the limit itself.
        buffered: list[Message] = []
        seen = 0
        more = declared is None or not declared.isdigit()
        while more:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await _too_large(scope, receive, send, self.max_bytes)
                return
            more = bool(message.get("more_body", False))

        async def replayed() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replayed, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem_response(413, "Payload too large", detail=f"body over {limit} bytes")
    await response(scope, receive, send)


class RequestContext:
    """Binds the correlation id for logs, echoes it, counts and times each request per route.

    Plain ASGI: `@app.middleware("http")` (BaseHTTPMiddleware) runs every request in an extra
    task group, which cost ingest about a tenth of its CPU per webhook.
    """

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-correlation-id")
        correlation = given.decode("latin-1") if given else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(correlation_id=correlation)
        start = time.perf_counter()
        status = 500  # unless a response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-correlation-id"] = correlation
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.clear_contextvars()
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, route).observe(time.perf_counter() - start)


def health_router(
    runtimes: Sequence[ServiceRuntime], bus: Bus, *, ready_without_bus: bool = False
) -> APIRouter:
    """/healthz (alive), /readyz (databases, broker, consumers), /metrics (Prometheus).

    `ready_without_bus`: the broker and consumer checks are reported but do not gate
    readiness (a service whose requests need only its database, like ingest's webhooks,
    stays in the load balancer while Kafka is away and its outbox holds what it accepts)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", responses=error_responses(503))
    async def readyz() -> Response:
        checks = {f"db.{r.name}": await r.db_ready() for r in runtimes}
        checks["bus"] = await bus.ping()
        checks["consumers"] = bus.consumers_ready()
        gating = [v for k, v in checks.items() if k.startswith("db.") or not ready_without_bus]
        if all(gating):
            return Response(
                content=json.dumps({"status": "ready", "checks": checks}),
                media_type="application/json",
            )
        return problem_response(503, "Not ready", checks=checks)

    @router.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        for r in runtimes:
            await r.relay.backlog()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_app(
    *,
    title: str,
    runtimes: Sequence[ServiceRuntime],
    routers: Sequence[APIRouter],
    bus: Bus,
    verifier: TokenVerifier,
    max_body_bytes: int = 1024 * 1024,
    ready_without_bus: bool = False,
    rate_limiter: TenantRateLimiter | None = None,
) -> FastAPI:
    """One FastAPI app serving one service (stack, Kubernetes) or all five (embedded)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        bus.subscribe(revocation_subscription(verifier, service=title))
        for r in runtimes:
            await r.start()
        await bus.start()
        log.info("service.started", service=title)
        try:
            yield
        finally:  # consumers first, then the outbox is flushed while the producer still runs
            log.info("service.stopping", service=title)
            await logged_step(bus.stop_consuming(), what="consumers", service=title)
            for r in runtimes:
                await logged_step(r.stop(), what=f"{r.name}: timers, outbox, pool", service=title)
            await logged_step(bus.stop(), what="bus producer", service=title)
            log.info("service.stopped", service=title)

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan)
    app.state.verifier = verifier
    settings = runtimes[0].settings if runtimes else KitSettings()
    app.state.rate_limiter = rate_limiter or limiter_from(settings)
    app.state.runtimes = {r.name: r for r in runtimes}
    app.state.bus = bus
    install_problem_handlers(app)
    complete_openapi(app)
    app.include_router(health_router(runtimes, bus, ready_without_bus=ready_without_bus))
    for router in routers:
        app.include_router(router)
    app.add_middleware(RequestContext, service=title)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def standalone_app(
    runtime: ServiceRuntime, routers: Sequence[APIRouter], verifier: TokenVerifier
) -> FastAPI:
    """The app of one service running as its own process."""
    return create_app(
        title=runtime.name, runtimes=[runtime], routers=routers, bus=runtime.bus, verifier=verifier
    )


def limiter_from(settings: KitSettings) -> TenantRateLimiter:
    """The per-tenant API rate limit of these settings (SB_API_RATE_PER_S, SB_API_RATE_BURST)."""
    return TenantRateLimiter(rate=settings.api_rate_per_s, burst=settings.api_rate_burst)
