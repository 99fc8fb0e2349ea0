"""Composition root of the routing service: the only place its adapters are built (tests pass fakes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter

from routing.adapters import orm
from routing.config import RoutingSettings
from routing.entrypoints import consumers, worker
from routing.entrypoints.http import build_routers
from routing.service_layer.context import Knobs
from sbkit.bus.ports import Bus
from sbkit.runtime import ServiceRuntime
from sbkit.wiring import build_bus

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class RoutingService:
    """The built service: its runtime, its HTTP routers and its knobs."""

    runtime: ServiceRuntime
    routers: list[APIRouter] = field(default_factory=list)
    knobs: Knobs = field(default_factory=Knobs)


def bootstrap(
    settings: RoutingSettings | None = None,
    *,
    bus: Bus | None = None,
    topic_names: Mapping[str, str] | None = None,
    timers: bool = True,
) -> RoutingService:
    """Build the routing service; `bus` is shared in embedded mode, `timers=False` for tests that tick."""
    settings = settings or RoutingSettings()
    runtime = ServiceRuntime(
        settings,
        metadata=orm.metadata,
        tables=orm.kit,
        migrations=MIGRATIONS,
        bus=bus or build_bus(settings),
    )
    knobs = Knobs(
        reopen_window=timedelta(seconds=settings.reopen_window_s),
        offline_grace=timedelta(seconds=settings.offline_grace_s),
    )
    consumers.register(runtime, knobs, topic_names)
    if timers:
        poll_s, batch = settings.timer_poll_ms / 1000, settings.timer_batch
        runtime.add_background(
            lambda: worker.poll_forever(runtime, knobs, poll_s=poll_s, batch=batch)
        )
    return RoutingService(runtime=runtime, routers=build_routers(runtime, knobs), knobs=knobs)
