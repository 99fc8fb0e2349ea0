"""The timer worker: polls due durable timers and fires them, one transaction per timer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog

from routing.adapters.history import due_timers, finish_timer
from routing.service_layer.context import Ctx, Knobs
from routing.service_layer.timers import fire
from sbkit.runtime import ServiceRuntime

log = structlog.get_logger(__name__)


async def fire_due(
    runtime: ServiceRuntime, knobs: Knobs, *, now: datetime | None = None, batch: int = 200
) -> int:
    """Fire every timer due by `now`; returns how many fired (a crash leaves them due, so none is lost)."""
    fired = 0
    while True:
        async with runtime.uow() as uow:
            timers = await due_timers(uow.session, now or datetime.now(UTC), limit=1)
            if not timers:
                return fired
            timer = timers[0]
            ctx = Ctx(uow, timer.tenant_id, knobs=knobs, now=now or datetime.now(UTC))
            await fire(ctx, timer)
            await finish_timer(uow.session, timer.id)
            await uow.commit()
        fired += 1
        if fired >= batch:
            return fired


async def poll_forever(runtime: ServiceRuntime, knobs: Knobs, *, poll_s: float, batch: int) -> None:
    """Fire due timers every `poll_s` seconds until cancelled (errors are logged and retried)."""
    while True:
        try:
            await fire_due(runtime, knobs, batch=batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("routing.timers.failed")
        await asyncio.sleep(poll_s)
