"""Awaiting work that must not be cut midway, and shutdown steps that say what they wait on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)
T = TypeVar("T")
SLOW_STEP_S = 5.0  # a shutdown step taking longer is logged, and again every as long

_detached: set[asyncio.Future[Any]] = set()  # finishing after their caller was cancelled


async def uncancelled(work: Awaitable[T]) -> T:
    """Await `work`; if the caller is cancelled meanwhile, the cancellation goes on at once but
    `work` still runs to its end, in its own task.

    For a unit of work whose caller may be cancelled at any moment (a streamed response whose
    client goes away). Cancelled while the driver runs its query, the session's connection is
    invalidated and closed (on SQLite rolled back first, `sbkit.db.engine`) and replaced by a
    new one; finished in its own task, the unit of work ends with its own commit or rollback and
    returns its connection as usual.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        _detached.add(task)
        task.add_done_callback(_forget)
        raise


def _forget(task: asyncio.Future[Any]) -> None:
    _detached.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("task.failed_after_cancel", error=type(task.exception()).__name__)


async def logged_step(step: Awaitable[T], *, what: str, service: str) -> T:
    """Await one shutdown step; while it takes longer than SLOW_STEP_S, log (warning) every
    SLOW_STEP_S what shutdown is waiting on, so a slow SIGTERM names its cause."""
    task = asyncio.ensure_future(step)
    waited = 0.0
    try:
        while True:
            done, _ = await asyncio.wait([task], timeout=SLOW_STEP_S)
            if done:
                return task.result()
            waited += SLOW_STEP_S
            log.warning("service.stop_waiting", service=service, on=what, waited_s=waited)
    except asyncio.CancelledError:
        task.cancel()  # as a plain `await step` would
        raise


async def stop_reader(task: asyncio.Task[None], *, what: str, service: str, grace_s: float) -> None:
    """Give a task that only reads `grace_s` to end, then cancel it, logging (warning) that it
    did not. Only for tasks that never write, and whose queries run `uncancelled`."""
    done, _ = await asyncio.wait([task], timeout=grace_s)
    if not done:
        log.warning("service.stop_cancelled", service=service, on=what, after_s=grace_s)
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
