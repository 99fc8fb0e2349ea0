"""Every response carries the request's correlation id; requests are counted per route and status."""

from __future__ import annotations

import httpx
import structlog
from fastapi import FastAPI
from prometheus_client import REGISTRY

from sbkit.web import RequestContext


def app_seeing_correlation() -> tuple[FastAPI, list[str]]:
    app = FastAPI()
    seen: list[str] = []

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        seen.append(str(structlog.contextvars.get_contextvars().get("correlation_id")))
        return {"id": item_id}

    app.add_middleware(RequestContext, service="ctx-test")
    return app, seen


def count(route: str, status: str) -> float:
    labels = {"service": "ctx-test", "method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("sb_http_requests_total", labels) or 0.0


async def test_given_correlation_id_is_bound_for_logs_and_echoed() -> None:
    app, seen = app_seeing_correlation()
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/items/1", headers={"X-Correlation-Id": "corr-123"})
    assert r.headers["x-correlation-id"] == "corr-123"
    assert seen == ["corr-123"]
    assert structlog.contextvars.get_contextvars() == {}  # nothing leaks to the next request


async def test_missing_correlation_id_is_generated_and_requests_counted_per_route() -> None:
    app, seen = app_seeing_correlation()
    before_ok, before_404 = count("/items/{item_id}", "200"), count("unmatched", "404")
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/items/2")
        missing = await client.get("/nowhere")
    assert len(r.headers["x-correlation-id"]) == 32 and seen == [r.headers["x-correlation-id"]]
    assert missing.status_code == 404 and missing.headers["x-correlation-id"]
    assert count("/items/{item_id}", "200") == before_ok + 1
    assert count("unmatched", "404") == before_404 + 1
