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
from analytics.domain.kpis import CUMULATIVE, FINAL, KPIS, Params, Totals
from analytics.service_layer import live
from sbkit.runtime import ServiceRuntime
from sbkit.tasks import stop_reader, uncancelled

log = structlog.get_logger(__name__)
# Interval-only KPIs: snapshots (backlog), late-final (FCR) and open spans (occupancy) need a query.
GAUGED = frozenset(live.TILES) - CUMULATIVE - FINAL - {"fcr", "occupancy"}
CURRENT = Gauge(
    "sb_analytics_kpi_current_interval",
    "KPI values of the current 15-minute interval (default variant and thresholds)",
    ["tenant", "kpi"],
)
STOP_GRACE_S = 2.0  # a refresh takes milliseconds; longer, it waits for the database


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

    async def read() -> str:
        async with runtime.uow() as uow:
            return json.dumps(await live.snapshot(uow, tenant, at(), params), sort_keys=True)

    last, sent = "", 0
    while max_events is None or sent < max_events:
        # a client that goes away cancels the stream: never in the middle of its query
        doc = await uncancelled(read())
        if doc != last:
            last, sent = doc, sent + 1
            yield ServerSentEvent(data=doc, event="kpis")
        elif await request.is_disconnected():
            return
        await asyncio.sleep(every_s)


async def refresh_gauges(runtime: ServiceRuntime) -> None:
    """Set the gauges from the current interval of every tenant active in it."""
    now = interval_of(datetime.now(UTC))

    async def read() -> dict[str, Totals]:
        async with runtime.uow() as uow:
            return await repository.sums_by_tenant(uow.session, start=now, end=now + INTERVAL)

    sums = await uncancelled(read())
    for tenant, totals in sums.items():
        for kpi in live.TILES:
            value = KPIS[kpi](totals, Params())
            if value is not None and kpi in GAUGED:
                CURRENT.labels(tenant, kpi).set(value)


@contextlib.asynccontextmanager
async def gauges(runtime: ServiceRuntime, every_s: float) -> AsyncIterator[None]:
    """Keep the gauges fresh while the app runs; at shutdown wait at most STOP_GRACE_S for a
    refresh in flight (it only reads: one queued behind a long transaction is given up)."""

    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await refresh_gauges(runtime)
            except Exception as exc:  # noqa: BLE001 - a failed refresh must not stop the next one
                detail = str(getattr(exc, "orig", None) or exc)[:200]  # the driver's message
                log.warning("analytics.gauges_failed", error=type(exc).__name__, detail=detail)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await stop_reader(task, what="gauges refresh", service=runtime.name, grace_s=STOP_GRACE_S)
