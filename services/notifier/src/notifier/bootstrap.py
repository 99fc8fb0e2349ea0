"""Composition root of the notifier service: the only place its adapters are built (tests pass fakes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter

from notifier.adapters import orm
from notifier.adapters.providers import build_sender
from notifier.config import NotifierSettings
from notifier.entrypoints import consumers, worker
from notifier.entrypoints.http import build_routers
from notifier.service_layer.ports import Sender
from sbkit.bus.ports import Bus
from sbkit.runtime import ServiceRuntime
from sbkit.wiring import build_bus

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


@dataclass
class NotifierService:
    """The built service: its runtime, HTTP routers, clock and sender."""

    runtime: ServiceRuntime
    routers: list[APIRouter] = field(default_factory=list)
    clock: Callable[[], datetime] = utcnow
    sender: Sender | None = None

    async def tick(self) -> int:
        """Fire due timers now (tests drive time with a controllable clock)."""
        assert self.sender is not None
        settings = self.runtime.settings
        url = getattr(settings, "notifier_tracking_url", "")
        return await worker.fire_due(
            self.runtime, clock=self.clock, sender=self.sender, tracking_url=url
        )


def bootstrap(
    settings: NotifierSettings | None = None,
    *,
    bus: Bus | None = None,
    clock: Callable[[], datetime] = utcnow,
    sender: Sender | None = None,
    topic_names: Mapping[str, str] | None = None,
    timers: bool = True,
) -> NotifierService:
    """Build the notifier service; `bus` is shared in embedded mode, `timers=False` for tests that tick."""
    settings = settings or NotifierSettings()
    runtime = ServiceRuntime(
        settings,
        metadata=orm.metadata,
        tables=orm.kit,
        migrations=MIGRATIONS,
        bus=bus or build_bus(settings),
    )
    sender = sender or build_sender(settings)
    url = settings.notifier_tracking_url
    consumers.register(runtime, clock=clock, tracking_url=url, rename=topic_names)
    if timers:
        poll_s, batch = settings.notifier_timer_poll_ms / 1000, settings.notifier_timer_batch
        runtime.add_background(
            lambda: worker.poll_forever(
                runtime, clock=clock, sender=sender, tracking_url=url, poll_s=poll_s, batch=batch
            )
        )
    routers = build_routers(runtime, clock=clock, tracking_url=url)
    return NotifierService(runtime=runtime, routers=routers, clock=clock, sender=sender)
