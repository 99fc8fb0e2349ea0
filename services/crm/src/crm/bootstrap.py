"""Composition root of the crm service: the only place its adapters are built (tests pass fakes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter

from crm.adapters import orm
from crm.config import CrmSettings
from crm.entrypoints import consumers
from crm.entrypoints.http import build_router
from sbkit.bus.ports import Bus
from sbkit.runtime import ServiceRuntime
from sbkit.wiring import build_bus

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class CrmService:
    """The built service: its runtime and its HTTP routers."""

    runtime: ServiceRuntime
    routers: list[APIRouter] = field(default_factory=list)


def bootstrap(
    settings: CrmSettings | None = None,
    *,
    bus: Bus | None = None,
    topic_names: Mapping[str, str] | None = None,
) -> CrmService:
    """Build the crm service from settings; `bus` is shared in embedded mode.

    `topic_names` renames consumed topics (integration tests on a shared broker).
    """
    settings = settings or CrmSettings()
    runtime = ServiceRuntime(
        settings,
        metadata=orm.metadata,
        tables=orm.kit,
        migrations=MIGRATIONS,
        bus=bus or build_bus(settings),
    )
    secret = settings.tombstone_secret()
    consumers.register(runtime, topic_names, tombstone_secret=secret)
    return CrmService(runtime=runtime, routers=[build_router(runtime, tombstone_secret=secret)])
