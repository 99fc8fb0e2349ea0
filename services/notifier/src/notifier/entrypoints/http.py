"""HTTP API of notifier: notifications with their reasons, policies, templates with preview."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Path, Query, Response

from notifier.domain.templates import MessageTemplate, render
from notifier.entrypoints.schemas import NotificationOut, PolicyIn, PreviewIn, TemplateIn
from notifier.service_layer.context import Ctx, policy_from
from sbkit.auth import Principal, requires
from sbkit.problems import NotFound, error_responses
from sbkit.runtime import ServiceRuntime

T = TypeVar("T")
READ, WRITE = "notifications:read", "notifications:write"


def _id() -> Any:
    """A path id (a fresh object per route: FastAPI binds it to the parameter's name)."""
    return Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


STATUSES = "^(scheduled|deferred|sent|delivered|failed|suppressed)$"


class NotificationNotFound(NotFound):
    """No such notification in this tenant."""


class TemplateNotFound(NotFound):
    """No such template in this tenant."""


def build_routers(
    runtime: ServiceRuntime, *, clock: Callable[[], datetime], tracking_url: str
) -> list[APIRouter]:
    """The /v1 routes of notifier."""

    async def run(tenant: str, use: Callable[[Ctx], Awaitable[T]]) -> T:
        async with runtime.uow() as uow:
            result = await use(Ctx(uow, tenant, clock(), tracking_url))
            await uow.commit()
            return result

    router = APIRouter(prefix="/v1", tags=["notifier"])
    _notifications(router, run)
    _policies(router, run)
    _templates(router, run)
    return [router]


Run = Callable[[str, Callable[[Ctx], Awaitable[Any]]], Awaitable[Any]]


def _out(row: Any) -> NotificationOut:
    return NotificationOut.model_validate(dict(row._mapping))


def _notifications(router: APIRouter, run: Run) -> None:
    @router.get("/notifications", responses=error_responses(401, 403, 422))
    async def search(
        customer_id: str | None = Query(default=None, max_length=64),
        order_id: str | None = Query(default=None, max_length=200),
        status: str | None = Query(default=None, pattern=STATUSES),
        limit: int = Query(default=100, ge=1, le=500),
        principal: Principal = requires(READ),
    ) -> list[NotificationOut]:
        """Notifications (sent, deferred, suppressed, ...) with the reason of each decision."""

        async def use(ctx: Ctx) -> list[NotificationOut]:
            rows = await ctx.notes.search(
                customer_id=customer_id, order_id=order_id, status=status, limit=limit
            )
            return [_out(r) for r in rows]

        result: list[NotificationOut] = await run(principal.tenant_id, use)
        return result

    @router.get("/notifications/{notification_id}", responses=error_responses(401, 403, 404, 422))
    async def one(
        notification_id: str = _id(), principal: Principal = requires(READ)
    ) -> NotificationOut:
        """One notification and its decision history."""

        async def use(ctx: Ctx) -> NotificationOut:
            row = await ctx.notes.get(notification_id)
            if row is None:
                raise NotificationNotFound("no such notification")
            return _out(row)

        result: NotificationOut = await run(principal.tenant_id, use)
        return result


def _policies(router: APIRouter, run: Run) -> None:
    @router.get("/policies", responses=error_responses(401, 403))
    async def get_policy(principal: Principal = requires(READ)) -> dict[str, Any]:
        """The tenant's policy as stored (defaults apply to what is not set)."""

        async def use(ctx: Ctx) -> dict[str, Any]:
            return await ctx.notes.policy() or {}

        result: dict[str, Any] = await run(principal.tenant_id, use)
        return result

    @router.put("/policies", responses=error_responses(401, 403, 422))
    async def put_policy(body: PolicyIn, principal: Principal = requires(WRITE)) -> dict[str, Any]:
        """Replace the policy: quiet hours, cap, fallback order, margins, stall thresholds."""
        doc = body.model_dump(exclude_none=True)
        policy_from(doc)  # a document that does not build a policy never gets stored

        async def use(ctx: Ctx) -> dict[str, Any]:
            await ctx.notes.put_policy(doc)
            return doc

        result: dict[str, Any] = await run(principal.tenant_id, use)
        return result


def _out_template(template_id: str, row: Any) -> dict[str, Any]:
    return {"id": template_id, "language": row.language, "subject": row.subject, "body": row.body}


def _templates(router: APIRouter, run: Run) -> None:
    out = _out_template

    @router.get("/templates", responses=error_responses(401, 403))
    async def list_templates(principal: Principal = requires(READ)) -> list[dict[str, Any]]:
        """The tenant's templates (built-in ones apply for other languages)."""

        async def use(ctx: Ctx) -> list[dict[str, Any]]:
            return [out(r.template_id, r) for r in await ctx.notes.templates()]

        result: list[dict[str, Any]] = await run(principal.tenant_id, use)
        return result

    @router.get("/templates/{template_id}", responses=error_responses(401, 403, 404, 422))
    async def get_template(
        template_id: str = _id(), principal: Principal = requires(READ)
    ) -> dict[str, Any]:
        """One template."""

        async def use(ctx: Ctx) -> dict[str, Any]:
            row = await ctx.notes.template(template_id)
            if row is None:
                raise TemplateNotFound("no such template")
            return out(template_id, row)

        result: dict[str, Any] = await run(principal.tenant_id, use)
        return result

    @router.put("/templates/{template_id}", responses=error_responses(401, 403, 422))
    async def put_template(
        body: TemplateIn, template_id: str = _id(), principal: Principal = requires(WRITE)
    ) -> dict[str, Any]:
        """Create or replace a template."""

        async def use(ctx: Ctx) -> dict[str, Any]:
            await ctx.notes.put_template(template_id, **body.model_dump())
            return {"id": template_id, **body.model_dump()}

        result: dict[str, Any] = await run(principal.tenant_id, use)
        return result

    _template_actions(router, run)


def _template_actions(router: APIRouter, run: Run) -> None:
    @router.delete(
        "/templates/{template_id}", status_code=204, responses=error_responses(401, 403, 404, 422)
    )
    async def delete_template(
        template_id: str = _id(), principal: Principal = requires(WRITE)
    ) -> Response:
        """Delete a template."""

        async def use(ctx: Ctx) -> None:
            if not await ctx.notes.drop_template(template_id):
                raise TemplateNotFound("no such template")

        await run(principal.tenant_id, use)
        return Response(status_code=204)

    @router.post("/templates/{template_id}/preview", responses=error_responses(401, 403, 404, 422))
    async def preview(
        body: PreviewIn, template_id: str = _id(), principal: Principal = requires(READ)
    ) -> dict[str, str]:
        """Render a template with sample values."""

        async def use(ctx: Ctx) -> dict[str, str]:
            row = await ctx.notes.template(template_id)
            if row is None:
                raise TemplateNotFound("no such template")
            t = MessageTemplate(row.language, row.subject, row.body)
            est = body.estimate
            subject, text = render(
                t, order_id=body.order_id, estimate=est, tracking_url=body.tracking_url
            )
            return {"subject": subject, "body": text, "language": row.language}

        result: dict[str, str] = await run(principal.tenant_id, use)
        return result
