"""Running a use case in a unit of work, retried when a concurrent duplicate won the race."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from sbkit.db.retry import retryable
from sbkit.db.uow import UnitOfWork

T = TypeVar("T")
UowFactory = Callable[[], UnitOfWork]
_ATTEMPTS = 4


async def committed(new_uow: UowFactory, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run `work` in a fresh unit of work and commit; retry on unique-key, lock and deadlock conflicts.

    A concurrent duplicate loses on the unique key (IntegrityError; on SQLite it may instead see
    a stale snapshot, OperationalError): the retry then finds the winner's row and returns it.
    """
    for attempt in range(_ATTEMPTS):
        try:
            async with new_uow() as uow:
                result = await work(uow)
                await uow.commit()
                return result
        except DBAPIError as exc:
            if not (isinstance(exc, IntegrityError | OperationalError) or retryable(exc)):
                raise
            if attempt == _ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")
