"""Composition root of the notifier service: the only place its adapters are built (tests pass fakes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from notifier.adapters import orm
from notifier.config import NotifierSettings
from sbkit.bus.ports import Bus
from sbkit.runtime import ServiceRuntime
from sbkit.wiring import build_bus

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class NotifierService:
    """The built service: its runtime and its HTTP routers."""

    runtime: ServiceRuntime
    routers: list[APIRouter] = field(default_factory=list)


def bootstrap(
    settings: NotifierSettings | None = None, *, bus: Bus | None = None
) -> NotifierService:
    """Build the notifier service from settings; `bus` is shared in embedded mode."""
    settings = settings or NotifierSettings()
    runtime = ServiceRuntime(
        settings,
        metadata=orm.metadata,
        tables=orm.kit,
        migrations=MIGRATIONS,
        bus=bus or build_bus(settings),
    )
    return NotifierService(runtime=runtime)
