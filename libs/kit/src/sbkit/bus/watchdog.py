"""Telling a consumer group that is stuck from one that is idle or busy, and showing where.

A consumer task can wait forever without failing: a chaos run once saw one group of crm stop
with 786 records waiting while the process, its other groups and its database were fine, and
nothing was logged. Such a group is noticed from outside its consumer: the committed offsets
(read by an admin client) have not moved for `stall_after_s` while the partitions' ends are past
them. An idle group (nothing waiting) and a busy one (offsets moving) are never stalled. The
bus then logs where the consumer task waits (`await_chain`) and replaces the consumer: the new
member re-reads from the committed offsets, and the inboxes drop what was already applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from types import CoroutineType, GeneratorType
from typing import Any

Offsets = Mapping[tuple[str, int], int]


@dataclass
class GroupProgress:
    """One group's committed offsets over time, and whether they are stuck."""

    stall_after_s: float
    committed: dict[tuple[str, int], int] | None = None
    since: float = 0.0
    stalled: bool = False
    stalls: int = 0

    def observe(self, committed: Offsets, lag: int, now: float) -> bool:
        """Record one look at the group; True when it is due to be called stalled (again).

        Progress is any change of a committed offset, or nothing left to read. Once stalled, the
        next verdict comes only after another `stall_after_s` without progress, so a replaced
        consumer has that long to join its group and catch up."""
        if self.committed is None or lag == 0 or dict(committed) != self.committed:
            self.committed = dict(committed)
            self.since = now
            self.stalled = False
            return False
        if now - self.since < self.stall_after_s:
            return False
        self.stalled = True
        self.stalls += 1
        self.since = now
        return True


def await_chain(awaitable: object, *, depth: int = 40) -> list[str]:
    """Where a task (or coroutine) is suspended: one `file:line in function` per frame, from the
    task's own coroutine down to the innermost await, into every child of a `gather`.

    `Task.get_stack()` shows only the task's top frame for a suspended coroutine, which says
    nothing about what it waits for."""
    out: list[str] = []
    _walk(awaitable, out, depth, "")
    return out


def client_tasks(skip: object, *, library: str = "aiokafka", most: int = 40) -> list[str]:
    """Every other task suspended in `library`'s code, as `await_chain`s, identical chains
    counted once (`N x`). A stalled consumer may wait for a lock or future that one of these
    (its group coordinator, heartbeat, metadata synchroniser) holds."""
    chains: dict[tuple[str, ...], int] = {}
    for task in asyncio.all_tasks():
        if task is skip or task.done():
            continue
        chain = tuple(await_chain(task))
        if any(library in line for line in chain):
            chains[chain] = chains.get(chain, 0) + 1
    out: list[str] = []
    for chain, count in list(chains.items())[:most]:
        out.append(f"{count} x:")
        out += [f"  {line}" for line in chain]
    return out


def _walk(obj: object, out: list[str], depth: int, indent: str) -> None:
    task = obj if isinstance(obj, asyncio.Task) else None
    if task is not None:
        obj = task.get_coro()
    while obj is not None and depth > 0:  # the coroutines awaiting one another
        depth -= 1
        frame, inner = _frame_and_inner(obj)
        if frame is None:
            break
        code = frame.f_code
        out.append(f"{indent}{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        obj = inner
    # the future the innermost one waits for: a task knows it (a coroutine's own `cr_await`
    # is then an opaque iterator over it)
    waiter = getattr(task, "_fut_waiter", None) if task is not None else obj
    children: Any = getattr(waiter, "_children", None)  # asyncio.gather's future
    if children:
        out.append(f"{indent}gather of {len(children)}:")
        for child in children:
            _walk(child, out, depth - 1, indent + "  ")
    elif waiter is not None:
        out.append(f"{indent}waits on {waiter!r}"[:300])


def _frame_and_inner(obj: object) -> tuple[Any, object]:
    if isinstance(obj, CoroutineType):
        return obj.cr_frame, obj.cr_await
    if isinstance(obj, GeneratorType):
        return obj.gi_frame, obj.gi_yieldfrom
    # an async generator's asend/athrow, or a coroutine wrapper: follow what it exposes
    frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
    inner = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
    return frame, inner
