"""Group commit: concurrent requests' writes coalesced into one transaction, one commit each group.

A webhook's cost is dominated by its transaction (checkout, BEGIN, statements, COMMIT with its
WAL flush), not by its rows. Requests that arrive while a group is being committed wait for the
next group, so under load one transaction carries many requests and when idle a request is
committed at once (no timer, no added delay). Every request still gets its answer only after
the transaction holding its rows committed; a failed group fails every request in it (→ 503,
the provider retries, and the natural keys make the retry safe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ingest.service_layer.transactions import UowFactory, committed
from sbkit.db.uow import UnitOfWork

S = TypeVar("S")
R = TypeVar("R")
Store = Callable[[UnitOfWork, Sequence[S]], Awaitable[list[R]]]


@dataclass
class _Waiting(Generic[S, R]):
    submission: S
    size: int
    future: asyncio.Future[R]


class GroupCommit(Generic[S, R]):
    """Runs `store(uow, submissions)` for everything submitted meanwhile, then commits once.

    `store` must only write (set-based, no per-request checks that could fail one request),
    and return one result per submission, in order. At most `in_flight` groups commit at
    a time; a group takes up to `max_rows` rows (one large submission may exceed it alone).
    """

    def __init__(
        self, new_uow: UowFactory, store: Store[S, R], *, in_flight: int = 1, max_rows: int = 2000
    ) -> None:
        self._new_uow = new_uow
        self._store = store
        self._in_flight = in_flight
        self._max_rows = max_rows
        self._waiting: list[_Waiting[S, R]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, submission: S, *, size: int = 1) -> R:
        """The result of `submission` once the transaction that stored it committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(submission, size, future))
        self._start_groups()
        # a request cancelled here cancels only its own future: the group commits regardless
        return await future

    def _start_groups(self) -> None:
        while self._waiting and len(self._running) < self._in_flight:
            group: list[_Waiting[S, R]] = []
            rows = 0
            while self._waiting and (not group or rows + self._waiting[0].size <= self._max_rows):
                group.append(self._waiting.pop(0))
                rows += group[-1].size
            task = asyncio.create_task(self._commit(group))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start_groups()

    async def _commit(self, group: list[_Waiting[S, R]]) -> None:
        submissions = [w.submission for w in group]

        async def work(uow: UnitOfWork) -> list[R]:
            return await self._store(uow, submissions)

        try:
            results = await committed(self._new_uow, work)
        except asyncio.CancelledError:  # shutting down: nobody may wait forever
            for waiting in group:
                waiting.future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every request of the group
            for waiting in group:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        for waiting, result in zip(group, results, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(result)

    async def drain(self) -> None:
        """Wait until every group started so far has committed (or failed)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
