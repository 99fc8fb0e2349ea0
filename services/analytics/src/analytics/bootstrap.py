"""Composition root of the analytics service: the only place its adapters are built (tests pass fakes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from analytics.adapters import orm
from analytics.config import AnalyticsSettings
from analytics.entrypoints import consumers
from analytics.entrypoints.http import build_router
from sbkit.bus.ports import Bus
from sbkit.runtime import ServiceRuntime
from sbkit.wiring import build_bus

MIGRATIONS = Path(__file__).parent / "migrations"
# No parallel workers on the service's PostgreSQL connections. Its reads sum a few thousand
# rollup rows per statement; one whose estimated cost is near the planner's thresholds can still
# be planned as a `Gather` of two workers on some samples of the statistics — the total over 30
# days from a noon right after the bench's 10^6 load: ≈ 11 ms instead of ≈ 2 ms, starting and
# gathering two worker processes on two cores. A table option cannot stop it: a parallel `Append`
# runs even tables without parallel scans in workers.
SERIAL_PLANS = {"max_parallel_workers_per_gather": "0"}


@dataclass
class AnalyticsService:
    """The built service: its runtime and its HTTP routers."""

    runtime: ServiceRuntime
    routers: list[APIRouter] = field(default_factory=list)


def bootstrap(
    settings: AnalyticsSettings | None = None,
    *,
    bus: Bus | None = None,
    topic_names: Mapping[str, str] | None = None,
) -> AnalyticsService:
    """Build the analytics service from settings; `bus` is shared in embedded mode.

    `topic_names` renames consumed topics (integration tests on a shared broker).
    """
    settings = settings or AnalyticsSettings()
    runtime = ServiceRuntime(
        settings,
        metadata=orm.metadata,
        tables=orm.kit,
        migrations=MIGRATIONS,
        bus=bus or build_bus(settings),
        server_settings=SERIAL_PLANS,
    )
    consumers.register(runtime, topic_names)
    return AnalyticsService(runtime=runtime, routers=[build_router(runtime, settings)])
