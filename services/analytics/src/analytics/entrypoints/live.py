"""Live outputs: the SSE stream of wallboard snapshots and Prometheus gauges of the current interval."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import structlog
from prometheus_client import Gauge
from sse_starlette.sse import ServerSentEvent
from starlette.requests import Request

from analytics.adapters import repository
from analytics.domain.components import INTERVAL, interval_of
from analytics.domain.kpis import CUMULATIVE, FINAL, KPIS, Params
from analytics.service_layer import live
from sbkit.runtime import ServiceRuntime

log = structlog.get_logger(__name__)
# Interval-only KPIs: snapshots (backlog), late-final (FCR) and open spans (occupancy) need a query.
GAUGED = frozenset(live.TILES) - CUMULATIVE - FINAL - {"fcr", "occupancy"}
CURRENT = Gauge(
    "sb_analytics_kpi_current_interval",
    "KPI values of the current 15-minute interval (default variant and thresholds)",
    ["tenant", "kpi"],
)


async def stream(
    runtime: ServiceRuntime,
    request: Request,
    *,
    tenant: str,
    params: Params,
    at: Callable[[], datetime],
    every_s: float,
    max_events: int | None,
) -> AsyncIterator[ServerSentEvent]:
    """A `kpis` event whenever the snapshot changes (the first at once), re-read every `every_s`."""
    last, sent = "", 0
    while max_events is None or sent < max_events:
        async with runtime.uow() as uow:
            doc = json.dumps(await live.snapshot(uow, tenant, at(), params), sort_keys=True)
        if doc != last:
            last, sent = doc, sent + 1
            yield ServerSentEvent(data=doc, event="kpis")
        elif await request.is_disconnected():
            return
        await asyncio.sleep(every_s)


async def refresh_gauges(runtime: ServiceRuntime) -> None:
    """Set the gauges from the current interval of every tenant active in it."""
    now = interval_of(datetime.now(UTC))
    async with runtime.uow() as uow:
        sums = await repository.sums_by_tenant(uow.session, start=now, end=now + INTERVAL)
    for tenant, totals in sums.items():
        for kpi in live.TILES:
            value = KPIS[kpi](totals, Params())
            if value is not None and kpi in GAUGED:
                CURRENT.labels(tenant, kpi).set(value)


@contextlib.asynccontextmanager
async def gauges(runtime: ServiceRuntime, every_s: float) -> AsyncIterator[None]:
    """Keep the gauges fresh while the app runs."""

    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await refresh_gauges(runtime)
            except Exception as exc:  # noqa: BLE001 - a failed refresh must not stop the next one
                log.warning("analytics.gauges_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()  # let a running refresh finish instead of cancelling it mid-query
        await task
