"""Retry a whole unit of work when the database aborted it to break a deadlock or conflict."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
RETRYABLE = {"40P01", "40001"}  # deadlock_detected, serialization_failure
ATTEMPTS = 6


def retryable(exc: BaseException) -> bool:
    """Whether the database aborted the transaction only to let another one through."""
    if not isinstance(exc, DBAPIError):
        return False
    # SQLite (embedded mode): a writer that waited past busy_timeout
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE or "database is locked" in str(exc.orig)


async def with_retry(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run a transaction, again from scratch if the database chose it as a deadlock victim."""
    for n in range(ATTEMPTS):
        try:
            return await attempt()
        except DBAPIError as exc:
            if not retryable(exc) or n == ATTEMPTS - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * 2**n))  # jitter: do not collide again
    raise AssertionError("unreachable")
