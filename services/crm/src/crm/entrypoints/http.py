"""HTTP API of crm: the card, search, timeline, links and merges, export and erasure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.domain.handles import HandleKey, InvalidHandle, normalise, parse_handle
from crm.entrypoints import schemas
from crm.service_layer import card, customers, privacy
from crm.service_layer.context import Ctx
from crm.service_layer.customers import Changes, Consent
from sbkit.auth import Principal, requires
from sbkit.db.engine import is_postgres, make_sessionmaker
from sbkit.db.retry import with_retry
from sbkit.db.uow import UnitOfWork
from sbkit.problems import error_responses
from sbkit.runtime import ServiceRuntime

T = TypeVar("T")
READ, WRITE = "customers:read", "customers:write"


def _handles(
    email: str | None, phone: str | None, extra: list[schemas.HandleIn]
) -> list[HandleKey]:
    """Normalised handles of a request, or a 422 naming the field."""
    try:
        found = [normalise("email", email, field="email")] if email else []
        found += [normalise("phone", phone, field="phone")] if phone else []
        found += [normalise(h.kind.value, h.value, h.scope, field="handles") for h in extra]
    except InvalidHandle as exc:
        raise card.invalid(exc) from exc
    return found


def _changes(body: schemas.Profile) -> Changes:
    consents = [Consent(c.channel.value, c.purpose, c.granted) for c in body.consents]
    return Changes(attributes=body.values(), consents=consents)


def _read_sessions(runtime: ServiceRuntime) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads: autocommit on PostgreSQL (no BEGIN/COMMIT round trips); SQLite keeps
    its transactions (embedded mode takes its write lock in BEGIN)."""
    if not is_postgres(runtime.engine):
        return runtime.sessionmaker
    return make_sessionmaker(runtime.engine.execution_options(isolation_level="AUTOCOMMIT"))


def build_router(runtime: ServiceRuntime, *, tombstone_secret: bytes) -> APIRouter:
    """The /v1 routes of crm."""
    router = APIRouter(prefix="/v1", tags=["crm"])

    def context(uow: UnitOfWork, p: Principal, request: Request) -> Ctx:
        correlation = request.headers.get("x-correlation-id")
        return Ctx(uow, p.tenant_id, correlation_id=correlation, tombstone_secret=tombstone_secret)

    async def run(p: Principal, request: Request, use: Callable[[Ctx], Awaitable[T]]) -> T:
        """Run a use case in one unit of work; commits only if it returns (retried on deadlock)."""

        async def attempt() -> T:
            async with runtime.uow() as uow:
                result = await use(context(uow, p, request))
                await uow.commit()
                return result

        return await with_retry(attempt)

    reads = _read_sessions(runtime)

    async def read(p: Principal, request: Request, use: Callable[[Ctx], Awaitable[T]]) -> T:
        """Run a read-only use case without BEGIN/COMMIT on PostgreSQL (two round trips less):
        each statement is atomic on its own, as it would be in a READ COMMITTED transaction,
        and the card is one statement."""
        async with UnitOfWork(reads, runtime.tables) as uow:
            return await use(context(uow, p, request))

    @router.get(
        "/customers/{customer_id}",
        response_model=schemas.Card,
        responses=error_responses(401, 403, 404),
    )
    async def get_customer(
        customer_id: str, request: Request, p: Principal = requires(READ)
    ) -> Any:
        """The card; a merged-away id answers with the survivor's card (`requested_id` kept)."""
        return await read(p, request, lambda ctx: card.card(ctx, customer_id))

    @router.get(
        "/customers", response_model=list[dict[str, Any]], responses=error_responses(401, 403, 422)
    )
    async def search(
        request: Request,
        email: str | None = None,
        phone: str | None = None,
        handle: str | None = Query(default=None, description="kind:value or kind:scope:value"),
        q: str | None = Query(default=None, min_length=2, max_length=100),
        limit: int = Query(default=20, ge=1, le=100),
        p: Principal = requires(READ),
    ) -> Any:
        """Customers by exact email, phone or handle, or by name."""
        handles = _handles(email, phone, [])
        if handle:
            try:
                handles.append(parse_handle(handle, field="handle"))
            except InvalidHandle as exc:
                raise card.invalid(exc) from exc
        return await read(
            p, request, lambda ctx: card.search(ctx, handles=handles, text=q, limit=limit)
        )

    @router.get(
        "/customers/{customer_id}/timeline",
        response_model=schemas.TimelinePage,
        responses=error_responses(401, 403, 404, 422),
    )
    async def timeline(
        customer_id: str,
        request: Request,
        cursor: str | None = None,
        limit: int = Query(default=50, ge=1, le=200),
        p: Principal = requires(READ),
    ) -> Any:
        """The timeline, newest first; pass `next_cursor` back for the next page."""
        return await read(
            p, request, lambda ctx: card.timeline(ctx, customer_id, cursor=cursor, limit=limit)
        )

    @router.post(
        "/customers",
        status_code=201,
        response_model=schemas.Card,
        responses=error_responses(401, 403, 409, 422),
    )
    async def create(
        body: schemas.CustomerIn, request: Request, p: Principal = requires(WRITE)
    ) -> Any:
        """A new customer with handles no one holds yet."""
        handles = _handles(body.email, body.phone, body.handles)

        async def use(ctx: Ctx) -> dict[str, Any]:
            cid = await customers.create(ctx, handles, _changes(body), agent=p.token_id)
            return await card.card(ctx, cid)

        return await run(p, request, use)

    @router.patch(
        "/customers/{customer_id}",
        response_model=schemas.Card,
        responses=error_responses(401, 403, 404, 422),
    )
    async def patch(
        customer_id: str, body: schemas.Profile, request: Request, p: Principal = requires(WRITE)
    ) -> Any:
        """Record attributes, preferences and consents (earlier values stay, with provenance)."""

        async def use(ctx: Ctx) -> dict[str, Any]:
            cid = await customers.record(ctx, customer_id, _changes(body), agent=p.token_id)
            return await card.card(ctx, cid)

        return await run(p, request, use)

    _write_routes(router, run)
    return router


def _write_routes(router: APIRouter, run: Any) -> None:
    """Links, merges, undo, export and erasure."""

    @router.post(
        "/customers/{customer_id}/links",
        response_model=schemas.LinkOut,
        responses=error_responses(401, 403, 404, 409, 422),
    )
    async def link(
        customer_id: str, body: schemas.LinkIn, request: Request, p: Principal = requires(WRITE)
    ) -> Any:
        """Link a handle; if another customer holds it, that customer merges into this one."""
        handles = _handles(body.email, body.phone, [body.handle] if body.handle else [])
        if len(handles) != 1:
            raise card.invalid(InvalidHandle("handle", "give exactly one of email, phone, handle"))
        return await run(
            p,
            request,
            lambda ctx: customers.add_link(ctx, customer_id, handles[0], agent=p.token_id),
        )

    @router.post(
        "/customers/{customer_id}/merge",
        response_model=schemas.MergeOut,
        responses=error_responses(401, 403, 404, 409, 422),
    )
    async def merge(
        customer_id: str, body: schemas.MergeIn, request: Request, p: Principal = requires(WRITE)
    ) -> Any:
        """Merge `other_id` into this customer (409 for itself or an already-merged customer)."""
        return await run(
            p,
            request,
            lambda ctx: customers.merge(ctx, customer_id, body.other_id, agent=p.token_id),
        )

    @router.get(
        "/merges/{merge_id}",
        response_model=schemas.MergeOut,
        responses=error_responses(401, 403, 404),
    )
    async def get_merge(merge_id: str, request: Request, p: Principal = requires(READ)) -> Any:
        """A merge, its provenance and exactly what it moved."""
        return await run(p, request, lambda ctx: customers.merge_view(ctx, merge_id))

    @router.post(
        "/merges/{merge_id}/undo",
        response_model=schemas.MergeOut,
        responses=error_responses(401, 403, 404, 409),
    )
    async def undo(merge_id: str, request: Request, p: Principal = requires(WRITE)) -> Any:
        """Undo a merge: both customers get back their own handles, attributes and timeline."""
        return await run(p, request, lambda ctx: customers.undo(ctx, merge_id, agent=p.token_id))

    @router.get("/customers/{customer_id}/export", responses=error_responses(401, 403, 404))
    async def export(customer_id: str, request: Request, p: Principal = requires(READ)) -> Any:
        """Everything held about the person (JSON)."""
        return await run(p, request, lambda ctx: privacy.export(ctx, customer_id))

    @router.delete(
        "/customers/{customer_id}",
        response_model=schemas.Erased,
        responses=error_responses(401, 403, 404),
    )
    async def erase(customer_id: str, request: Request, p: Principal = requires(WRITE)) -> Any:
        """Erase the person's personal data; emits customer.erased."""
        return await run(p, request, lambda ctx: privacy.erase(ctx, customer_id))
