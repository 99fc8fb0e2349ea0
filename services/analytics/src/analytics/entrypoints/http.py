"""HTTP API of analytics: KPIs with lights, thresholds, trends, staffing, live stream, wallboard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse
from sse_starlette.sse import EventSourceResponse

from analytics.config import AnalyticsSettings
from analytics.domain.components import INTERVAL, interval_of
from analytics.domain.kpis import KPIS, Params
from analytics.entrypoints import dashboard, live, schemas
from analytics.service_layer import queries, staffing
from sbkit.auth import Principal, requires
from sbkit.db.uow import UnitOfWork
from sbkit.problems import error_responses
from sbkit.runtime import ServiceRuntime

T = TypeVar("T")
READ, WRITE = "kpis:read", "kpis:write"
FROM = Query(alias="from", description="Start (inclusive), ISO 8601; naive means UTC")
TO = Query(alias="to", description="End (exclusive)")


def _params(variant: str, threshold_s: int, short_abandon_s: int, fcr_days: int = 7) -> Params:
    return Params(
        variant=variant,
        threshold_s=threshold_s,
        short_abandon_s=short_abandon_s,
        fcr_days=fcr_days,
    )


async def _run(runtime: ServiceRuntime, use: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run a use case in one unit of work; commits only if it returns."""
    async with runtime.uow() as uow:
        result = await use(uow)
        await uow.commit()
        return result


async def _read(runtime: ServiceRuntime, use: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run a read-only use case; on PostgreSQL in autocommit: no BEGIN and COMMIT round trips
    (two of a KPI read's seven, each a wake-up of the backend on a loaded machine). It sees the
    same data: at READ COMMITTED every statement takes its own snapshot inside a transaction
    too, and it writes nothing."""
    async with runtime.uow() as uow:
        if uow.session.get_bind().dialect.name == "postgresql":
            await uow.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        return await use(uow)


def _query(
    start: datetime, end: datetime, kpi: list[str], *, retention: timedelta, **kw: Any
) -> queries.KpiQuery:
    """A validated KPI query (422 for bad names or ranges)."""
    q = queries.KpiQuery(
        schemas.aware(start), schemas.aware(end), schemas.kpi_names(kpi, tuple(KPIS)), **kw
    )
    queries.validate(q, retention=retention)
    return q


def build_router(runtime: ServiceRuntime, settings: AnalyticsSettings) -> APIRouter:
    """The /v1 routes of analytics and its wallboard page."""
    every_s = settings.live_refresh_ms / 1000
    retention = timedelta(days=settings.retention_days)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with live.gauges(runtime, every_s, settings.gauge_slow_refresh_ms / 1000):
            yield

    router = APIRouter(tags=["analytics"], lifespan=lifespan)
    _kpi_routes(router, runtime, retention)
    _planning_routes(router, runtime, retention)
    _live_routes(router, runtime, retention, every_s)
    return router


def _kpi_routes(router: APIRouter, runtime: ServiceRuntime, retention: timedelta) -> None:
    """KPI values and thresholds."""

    @router.get("/v1/kpis", responses=error_responses(401, 403, 422))
    async def get_kpis(
        start: datetime = FROM,
        end: datetime = TO,
        kpi: list[str] = Query(
            default=[], description=f"KPI names (repeat or comma-separate): {', '.join(KPIS)}"
        ),
        interval: str | None = Query(default=None, description="15m, 30m, 1h, 1d or total"),
        group_by: str | None = Query(default=None, description="queue, channel or agent"),
        variant: str = Query(default="F1", description="Service-level variant F1..F5"),
        threshold_s: int = Query(default=20, ge=0, le=3600),
        short_abandon_s: int = Query(default=5, ge=0, le=3600),
        fcr_days: int = Query(default=7, ge=1, le=30, description="FCR repeat window (days)"),
        p: Principal = requires(READ),
    ) -> dict[str, Any]:
        """KPI values with their traffic lights, per group and interval over [from, to)."""
        q = _query(
            start,
            end,
            kpi,
            params=_params(variant, threshold_s, short_abandon_s, fcr_days),
            group_by=group_by,
            interval=schemas.interval(interval),
            retention=retention,
        )
        return await _read(runtime, lambda uow: queries.kpis(uow, p.tenant_id, q))

    @router.put("/v1/kpis/thresholds", responses=error_responses(401, 403, 422))
    async def put_thresholds(
        body: schemas.Thresholds, p: Principal = requires(WRITE)
    ) -> dict[str, Any]:
        """Set "green at" / "red at" thresholds of some KPIs; answers all of the tenant's overrides."""
        values = {k: v.model_dump(mode="json") for k, v in body.thresholds.items()}
        return await _run(runtime, lambda uow: queries.put_thresholds(uow, p.tenant_id, values))


def _planning_routes(router: APIRouter, runtime: ServiceRuntime, retention: timedelta) -> None:
    """Category trends and staffing."""

    @router.get("/v1/trends/categories", responses=error_responses(401, 403, 422))
    async def category_trends(
        start: datetime = FROM,
        end: datetime = TO,
        interval: str | None = Query(default="1h"),
        p: Principal = requires(READ),
    ) -> dict[str, Any]:
        """Classified cases per contact reason per interval, with shares."""
        q = _query(start, end, [], interval=schemas.interval(interval), retention=retention)
        return await _read(runtime, lambda uow: queries.category_trends(uow, p.tenant_id, q))

    @router.get("/v1/staffing", responses=error_responses(401, 403, 422))
    async def get_staffing(
        start: datetime | None = Query(default=None, alias="from"),
        end: datetime | None = Query(default=None, alias="to"),
        queue: str | None = None,
        target_sl: float = Query(default=0.8, gt=0, lt=1),
        threshold_s: int = Query(default=20, ge=0, le=3600),
        patience_s: float | None = Query(default=None, gt=0),
        shrinkage: float = Query(default=0.3, ge=0, lt=1),
        max_occupancy: float = Query(default=0.85, gt=0, le=1),
        p: Principal = requires(READ),
    ) -> dict[str, Any]:
        """Agents needed per queue and interval by Erlang C and Erlang A (default: the last 24 h)."""
        stop = schemas.aware(end) if end else interval_of(datetime.now(UTC)) + INTERVAL
        begin = schemas.aware(start) if start else stop - timedelta(days=1)
        q = _query(begin, stop, [], retention=retention)
        target = staffing.Target(target_sl, threshold_s, patience_s, shrinkage, max_occupancy)
        return await _read(
            runtime,
            lambda uow: staffing.staffing(
                uow, p.tenant_id, queue=queue, start=q.start, end=q.end, target=target
            ),
        )


def _live_routes(
    router: APIRouter, runtime: ServiceRuntime, retention: timedelta, every_s: float
) -> None:
    """The SSE stream and the wallboard page."""

    @router.get(
        "/v1/kpis/stream",
        response_class=EventSourceResponse,
        responses=error_responses(401, 403, 422),
    )
    async def stream(
        request: Request,
        at: datetime | None = Query(default=None, description="Show this moment instead of now"),
        variant: str = "F1",
        threshold_s: int = Query(default=20, ge=0, le=3600),
        short_abandon_s: int = Query(default=5, ge=0, le=3600),
        max_events: int | None = Query(default=None, ge=1, description="Close after this many"),
        p: Principal = requires(READ),
    ) -> EventSourceResponse:
        """Server-sent `kpis` events: a wallboard snapshot each time it changes."""
        params = _params(variant, threshold_s, short_abandon_s)
        now = datetime.now(UTC)
        queries.validate(queries.KpiQuery(now, now + INTERVAL, [], params), retention=retention)
        fixed = schemas.aware(at) if at else None  # checked before the stream starts
        moment = (lambda: fixed) if fixed else (lambda: datetime.now(UTC))
        events = live.stream(
            runtime,
            request,
            tenant=p.tenant_id,
            params=params,
            at=moment,
            every_s=every_s,
            max_events=max_events,
        )
        return EventSourceResponse(events, ping=15)

    @router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    async def wallboard() -> HTMLResponse:
        """The wallboard page (it reads the token from the URL fragment and consumes the stream)."""
        return HTMLResponse(dashboard.PAGE)
