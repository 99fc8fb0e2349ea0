"""Consumers wait out an outage of their own database instead of dead-lettering good records.

The retry budget (`SB_RETRY_*`, about a second by default) is for records that fail on a
healthy system. A restart of PostgreSQL takes longer than that, and every record in flight
would otherwise exhaust its budget and land in the DLQ although nothing is wrong with it (the
fault test saw ~100 per restart). So a failure while the database does not answer is not
counted: the handler waits until the database answers again and runs the record once more.
A failure while the database answers goes to the bus's retry budget as before, except a
transaction the database aborted to break a deadlock or a serialization conflict (SQLSTATE
40P01/40001; SQLite: "database is locked"): that is the concurrency's doing, not the record's,
so it is run again after a short random pause without counting (the fault tests once saw good
records dead-lettered after five deadlocks in a row).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import structlog

from sbkit.bus.ports import Record
from sbkit.db.retry import retryable

log = structlog.get_logger(__name__)

RecordHandler = Callable[[Record], Awaitable[None]]


def outage_guard(
    handler: RecordHandler,
    *,
    ready: Callable[[], Awaitable[bool]],
    poison: tuple[type[BaseException], ...],
    consumer: str,
    max_wait_s: float = 2.0,
) -> RecordHandler:
    """`handler`, retried for as long as `ready()` says the database is unreachable."""

    async def guarded(record: Record) -> None:
        conflicts = 0
        while True:
            try:
                await handler(record)
                return
            except poison:
                raise
            except Exception as exc:
                where = {
                    "consumer": consumer,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                }
                if retryable(exc):
                    conflicts += 1
                    log.info("consumer.conflict_retried", **where, conflicts=conflicts)
                    # jittered and growing, so the colliding transactions do not meet again
                    pause = min(max_wait_s, 0.01 * 2 ** min(conflicts, 8))
                    await asyncio.sleep(random.uniform(0, pause))
                    continue
                if await ready():
                    raise  # the database answers: this record's own failure
                log.warning("consumer.database_unavailable", **where, error=type(exc).__name__)
                await _until(ready, max_wait_s)

    return guarded


async def _until(ready: Callable[[], Awaitable[bool]], max_wait_s: float) -> None:
    """Poll `ready()` with a growing pause (cancellable: a shutdown ends the wait)."""
    pause = 0.1
    while not await ready():
        await asyncio.sleep(pause)
        pause = min(pause * 2, max_wait_s)
