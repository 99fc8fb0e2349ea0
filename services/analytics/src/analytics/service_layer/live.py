"""Use case: the wallboard snapshot of a tenant (current interval, the day so far, series, reasons)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from analytics.adapters import repository
from analytics.domain.components import INTERVAL, interval_of
from analytics.domain.kpis import AGE_BUCKETS, Params
from analytics.service_layer import queries, staffing
from sbkit.db.uow import UnitOfWork

TILES = (
    "service_level",
    "abandonment_rate",
    "asa",
    "aht",
    "offered",
    "backlog",
    "frt",
    "csat",
    "nps",
    "negative_sentiment_share",
    "occupancy",
    "fcr",
    "alert_ahead_share",
)
SERIES = ("service_level", "backlog")
AGING = tuple(f"backlog_age_{name}" for name in AGE_BUCKETS)


def _day_of(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


async def snapshot(uow: UnitOfWork, tenant: str, at: datetime, params: Params) -> dict[str, Any]:
    """Tiles for the interval holding `at` and for its day, the day's series, top reasons, aging
    backlog and the staffing gap."""
    now = interval_of(at)
    day = _day_of(now)
    current = await queries.kpis(uow, tenant, queries.KpiQuery(now, now + INTERVAL, TILES, params))
    today = await queries.kpis(uow, tenant, queries.KpiQuery(day, now + INTERVAL, TILES, params))
    series = await queries.kpis(
        uow, tenant, queries.KpiQuery(day, now + INTERVAL, SERIES, params, interval=INTERVAL)
    )
    aging = await queries.kpis(uow, tenant, queries.KpiQuery(now, now + INTERVAL, AGING, params))
    gap = await staffing.gap(uow, tenant, at=at, target=staffing.Target())
    reasons: dict[str, int] = {}
    for _, category, n in await repository.categories(
        uow.session, tenant=tenant, start=day, end=day + timedelta(days=1)
    ):
        reasons[category] = reasons.get(category, 0) + n
    return {
        "interval_start": now.isoformat(),
        "current": current["rows"][0]["kpis"],
        "today": today["rows"][0]["kpis"],
        "series": [
            {"interval_start": r["interval_start"], **{k: r["kpis"][k]["value"] for k in SERIES}}
            for r in series["rows"]
        ],
        "top_reasons": sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:5],
        "tiles": list(TILES),  # the page's order (the JSON's keys are sorted)
        "aging": [
            [k.removeprefix("backlog_age_"), aging["rows"][0]["kpis"][k]["value"]] for k in AGING
        ],
        "staffing": gap,
    }
