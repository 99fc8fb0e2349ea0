"""Live outputs: the SSE stream of wallboard snapshots and Prometheus gauges of the current interval."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import Gauge
from sse_starlette.sse import ServerSentEvent
from starlette.requests import Request

from analytics.adapters import repository
from analytics.config import AnalyticsSettings
from analytics.domain.components import INTERVAL, interval_of
from analytics.domain.kpis import CUMULATIVE, FINAL, KPIS, Params, Totals
from analytics.service_layer import live, queries
from sbkit.runtime import ServiceRuntime
from sbkit.tasks import stop_reader, uncancelled

log = structlog.get_logger(__name__)
# Read by `queries.kpis` per tenant, as `GET /v1/kpis` answers them: the backlog and its ages sum
# the history before now, final FCR waits for windows that close, occupancy adds the open presence
# spans. Every other KPI is a formula of the current interval's own sums (one read, every tenant).
SLOW = frozenset(CUMULATIVE | FINAL | {"occupancy"})
FAST = tuple(k for k in KPIS if k not in SLOW)
PARAMS = Params()  # the gauges show the default variant, thresholds and FCR window
CURRENT = Gauge(
    "sb_analytics_kpi_current_interval",
    "KPI values of the current 15-minute interval (default variant and thresholds)",
    ["tenant", "kpi"],
)
STOP_GRACE_S = 2.0  # a refresh takes milliseconds; longer, it waits for the database
SLOW_EVERY_S = AnalyticsSettings.model_fields["gauge_slow_refresh_ms"].default / 1000


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


Shown = dict[tuple[str, str], float]  # (tenant, kpi) -> value


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Gauges:
    """The gauges of the current interval. Each refresh replaces the label sets it showed: a
    tenant no longer active, or a KPI with no value now (`null` in the API), has no sample."""

    def __init__(self, runtime: ServiceRuntime, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.runtime, self.clock = runtime, clock
        self.active: set[str] | None = None  # tenants with components in the current interval
        # tenants with open cases or agents online at the last slow read: a quiet interval
        # (no components of its own) keeps their backlog, aging and occupancy
        self.open: set[str] = set()
        self._shown: dict[str, tuple[datetime, Shown]] = {}  # per cadence: its interval and values

    async def refresh_fast(self) -> None:
        """The FAST KPIs of every tenant active in the current interval, from one read of sums."""
        at = self.clock()
        start = interval_of(at)

        async def read() -> dict[str, Totals]:
            async with self.runtime.uow() as uow:
                return await repository.sums_by_tenant(
                    uow.session, start=start, end=start + INTERVAL
                )

        sums = await uncancelled(read())
        self.active = set(sums)
        values = {
            (tenant, kpi): value
            for tenant, totals in sums.items()
            for kpi in FAST
            if (value := KPIS[kpi](totals, PARAMS)) is not None
        }
        self._show("fast", start, values)

    async def refresh_slow(self) -> None:
        """The SLOW KPIs by `queries.kpis` (what `GET /v1/kpis` answers for the interval), one
        read per tenant: those active now and those `open` at the last slow read."""
        if self.active is None:  # which tenants are active: the fast read says
            await self.refresh_fast()
        at = self.clock()
        start = interval_of(at)
        q = queries.KpiQuery(start, start + INTERVAL, sorted(SLOW), PARAMS, now=at)

        async def read(tenant: str) -> dict[str, Any]:
            async with self.runtime.uow() as uow:
                answer = await queries.kpis(uow, tenant, q)
                return dict(answer["rows"][0]["kpis"])

        values: Shown = {}
        for tenant in sorted((self.active or set()) | self.open):
            cells = await uncancelled(read(tenant))
            values.update(
                {(tenant, k): c["value"] for k, c in cells.items() if c["value"] is not None}
            )
        self.open = {
            t for (t, k), v in values.items() if k == "occupancy" or (k == "backlog" and v)
        }
        self._show("slow", start, values)

    async def refresh(self) -> None:
        """Both refreshes, once."""
        await self.refresh_fast()
        await self.refresh_slow()

    async def guarded(self, cadence: str) -> None:
        """One refresh of a cadence ("fast", "slow"); a failure is logged, and the values shown
        stay while the interval they describe is still the current one (then they go)."""
        try:
            await (self.refresh_fast() if cadence == "fast" else self.refresh_slow())
        except Exception as exc:  # noqa: BLE001 - a failed refresh must not stop the next one
            detail = str(getattr(exc, "orig", None) or exc)[:200]  # the driver's message
            log.warning(
                "analytics.gauges_failed", cadence=cadence, error=type(exc).__name__, detail=detail
            )
            now = interval_of(self.clock())
            if self._shown.get(cadence, (now, {}))[0] != now:
                self._show(cadence, now, {})

    def _show(self, cadence: str, start: datetime, values: Shown) -> None:
        _, before = self._shown.get(cadence, (start, {}))
        for tenant, kpi in before.keys() - values.keys():
            CURRENT.remove(tenant, kpi)
        for (tenant, kpi), value in values.items():
            CURRENT.labels(tenant, kpi).set(value)
        self._shown[cadence] = (start, values)


async def refresh_gauges(runtime: ServiceRuntime) -> None:
    """Set every gauge of the current interval once (both cadences)."""
    await Gauges(runtime).refresh()


@contextlib.asynccontextmanager
async def gauges(
    runtime: ServiceRuntime,
    every_s: float,
    slow_every_s: float = SLOW_EVERY_S,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> AsyncIterator[None]:
    """Keep the gauges fresh while the app runs: FAST every `every_s`, SLOW every
    `slow_every_s`; at shutdown wait at most STOP_GRACE_S for a refresh in flight (it only
    reads: one queued behind a long transaction is given up)."""
    board = Gauges(runtime, clock=clock)
    stop = asyncio.Event()

    async def loop(cadence: str, every: float) -> None:
        while not stop.is_set():
            await board.guarded(cadence)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    tasks = {
        "gauges refresh": asyncio.create_task(loop("fast", every_s)),
        "slow gauges refresh": asyncio.create_task(loop("slow", slow_every_s)),
    }
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(
            *(
                stop_reader(task, what=what, service=runtime.name, grace_s=STOP_GRACE_S)
                for what, task in tasks.items()
            )
        )
