"""The timer worker: claims due durable timers (SKIP LOCKED) and fires them, one transaction each."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog

from notifier.adapters.notifications import claim_due, finish
from notifier.adapters.repository import fold_gaps
from notifier.service_layer import delivery, tracking
from notifier.service_layer.context import Ctx
from notifier.service_layer.ports import Sender
from sbkit.runtime import ServiceRuntime

log = structlog.get_logger(__name__)


async def fire_due(
    runtime: ServiceRuntime,
    *,
    clock: Callable[[], datetime],
    sender: Sender,
    tracking_url: str,
    batch: int = 200,
) -> int:
    """Fold learned scan gaps, then fire every timer due by now; a crash leaves a timer due, so
    none is lost (sends are idempotent)."""
    async with runtime.uow() as uow:
        if await fold_gaps(uow.session):
            await uow.commit()
    fired = 0
    while fired < batch:
        async with runtime.uow() as uow:
            now = clock()
            due = await claim_due(uow.session, now, limit=1)
            if not due:
                break
            timer = due[0]
            await finish(uow.session, timer.id)
            ctx = Ctx(uow, timer.tenant_id, now, tracking_url)
            await _fire(ctx, timer, sender=sender)
            await uow.commit()
        fired += 1
    return fired


async def _fire(ctx: Ctx, timer: object, *, sender: Sender) -> None:
    kind, ref = getattr(timer, "kind"), getattr(timer, "ref")  # noqa: B009 - a Row
    if kind in (tracking.STALL, tracking.CUTOFF):
        await tracking.fire(ctx, kind=kind, ref=ref, armed_for=getattr(timer, "armed_for"))  # noqa: B009
    elif kind == delivery.SEND:
        await delivery.fire_send(ctx, ref, sender=sender)
    elif kind == delivery.RECEIPT:
        await delivery.fire_receipt_timeout(ctx, ref)


async def poll_forever(
    runtime: ServiceRuntime,
    *,
    clock: Callable[[], datetime],
    sender: Sender,
    tracking_url: str,
    poll_s: float,
    batch: int,
) -> None:
    """Fire due timers every `poll_s` seconds until cancelled (errors are logged and retried)."""
    while True:
        try:
            await fire_due(
                runtime, clock=clock, sender=sender, tracking_url=tracking_url, batch=batch
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notifier.timers.failed")
        await asyncio.sleep(poll_s)
