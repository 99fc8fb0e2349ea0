"""Running a use case for an HTTP caller: one unit of work, committed only if it returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from fastapi import Request

from routing.service_layer.context import Ctx, Knobs
from sbkit.auth import Principal
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
    """Run a use case in one unit of work; commits only if it returns (nothing half-applied)."""

    async def run(p: Principal, request: Request, use: Callable[[Ctx], Awaitable[T]]) -> T:
        async with runtime.uow() as uow:
            ctx = Ctx(uow, p.tenant_id, request.headers.get("x-correlation-id"), knobs=knobs)
            result = await use(ctx)
            await uow.commit()
            return result

    return run
