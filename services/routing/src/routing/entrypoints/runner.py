"""Running a use case for an HTTP caller: one unit of work, committed only if it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from fastapi import Request

from routing.service_layer.context import Ctx, Knobs
from sbkit.auth import Principal
from sbkit.db.retry import with_retry
from sbkit.runtime import ServiceRuntime

T = TypeVar("T")


class Runner(Protocol):
    """Runs a use case for a caller in one unit of work."""

    async def __call__(
        self, p: Principal, request: Request, use: Callable[[Ctx], Awaitable[T]]
    ) -> T:
        """Run `use` and commit."""
        ...


def runner(runtime: ServiceRuntime, knobs: Knobs) -> Runner:
    """Run a use case in one unit of work; commits only if it returns (retried if a deadlock victim)."""

    async def run(p: Principal, request: Request, use: Callable[[Ctx], Awaitable[T]]) -> T:
        async def attempt() -> T:
            async with runtime.uow() as uow:
                correlation = request.headers.get("x-correlation-id")
                result = await use(Ctx(uow, p.tenant_id, correlation, knobs=knobs))
                await uow.commit()
                return result

        return await with_retry(attempt)

    return run
