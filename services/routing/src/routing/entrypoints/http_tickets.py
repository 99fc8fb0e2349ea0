"""HTTP API of routing's tickets: list, get with cross-channel history, and agent actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from routing.domain.model import Status
from routing.entrypoints.runner import Runner
from routing.entrypoints.schemas import (
    AssignIn,
    MessageOut,
    NoteIn,
    ReplyIn,
    StatusIn,
    TicketOut,
    TransferIn,
)
from routing.service_layer import actions
from routing.service_layer.context import Ctx
from routing.service_layer.errors import TicketNotFound
from sbkit.auth import Principal, requires
from sbkit.problems import error_responses

READ, WRITE = "tickets:read", "tickets:write"
ACTION_ERRORS = error_responses(401, 403, 404, 409, 422)


def build_router(run: Runner) -> APIRouter:
    """The /v1/tickets routes."""
    router = APIRouter(prefix="/v1/tickets", tags=["tickets"])

    async def detail(c: Ctx, ticket_id: str) -> TicketOut:
        row = await c.repo.ticket(ticket_id)
        if row is None:
            raise TicketNotFound(f"no ticket {ticket_id}")
        out = TicketOut.model_validate(row)
        out.messages = [
            MessageOut.model_validate(m._mapping) for m in await c.repo.messages(ticket_id)
        ]
        return out

    @router.get("", response_model=list[TicketOut], responses=error_responses(401, 403, 422))
    async def list_tickets(
        request: Request,
        status: Status | None = None,
        queue: str | None = None,
        agent: str | None = None,
        customer: str | None = None,
        limit: int = Query(50, ge=1, le=500),
        offset: int = Query(0, ge=0, le=1_000_000),
        p: Principal = requires(READ),
    ) -> list[TicketOut]:
        """Tickets filtered by status, queue, agent, customer (newest activity first)."""
        filters = {"status": status, "queue_id": queue, "agent_id": agent, "customer_id": customer}

        async def use(c: Ctx) -> list[TicketOut]:
            rows = await c.repo.list_tickets(filters, limit=limit, offset=offset)
            return [TicketOut.model_validate(r) for r in rows]

        result: list[TicketOut] = await run(p, request, use)
        return result

    @router.get("/{ticket_id}", response_model=TicketOut, responses=error_responses(401, 403, 404))
    async def get_ticket(
        ticket_id: str, request: Request, p: Principal = requires(READ)
    ) -> TicketOut:
        """A ticket with its cross-channel history (inbound, outbound, internal notes)."""
        result: TicketOut = await run(p, request, lambda c: detail(c, ticket_id))
        return result

    @router.post(
        "/{ticket_id}/replies", status_code=201, response_model=TicketOut, responses=ACTION_ERRORS
    )
    async def reply(
        ticket_id: str, body: ReplyIn, request: Request, p: Principal = requires(WRITE)
    ) -> TicketOut:
        """Answer the customer (ticket.agent_replied + outbound.message on their last channel)."""
        return await _act(
            request,
            p,
            ticket_id,
            lambda c: actions.reply(
                c, ticket_id, agent_id=body.agent_id, text=body.text, status=body.status
            ),
        )

    @router.post(
        "/{ticket_id}/notes", status_code=201, response_model=TicketOut, responses=ACTION_ERRORS
    )
    async def note(
        ticket_id: str, body: NoteIn, request: Request, p: Principal = requires(WRITE)
    ) -> TicketOut:
        """Add an internal note."""
        return await _act(
            request,
            p,
            ticket_id,
            lambda c: actions.note(c, ticket_id, agent_id=body.agent_id, text=body.text),
        )

    @router.post("/{ticket_id}/assign", response_model=TicketOut, responses=ACTION_ERRORS)
    async def assign(
        ticket_id: str, body: AssignIn, request: Request, p: Principal = requires(WRITE)
    ) -> TicketOut:
        """Give the ticket to an agent (409 if they are not online or have no capacity)."""
        return await _act(
            request, p, ticket_id, lambda c: actions.assign(c, ticket_id, agent_id=body.agent_id)
        )

    @router.post("/{ticket_id}/transfer", response_model=TicketOut, responses=ACTION_ERRORS)
    async def transfer(
        ticket_id: str, body: TransferIn, request: Request, p: Principal = requires(WRITE)
    ) -> TicketOut:
        """Move the ticket to another queue."""
        return await _act(
            request,
            p,
            ticket_id,
            lambda c: actions.transfer(c, ticket_id, queue_id=body.queue_id, reason=body.reason),
        )

    @router.post("/{ticket_id}/status", response_model=TicketOut, responses=ACTION_ERRORS)
    async def status_change(
        ticket_id: str, body: StatusIn, request: Request, p: Principal = requires(WRITE)
    ) -> TicketOut:
        """Change status forward (open, pending, resolved, closed)."""
        return await _act(
            request,
            p,
            ticket_id,
            lambda c: actions.change_status(c, ticket_id, Status(body.status)),
        )

    @router.post("/{ticket_id}/resolve", response_model=TicketOut, responses=ACTION_ERRORS)
    async def resolve(
        ticket_id: str, request: Request, p: Principal = requires(WRITE)
    ) -> TicketOut:
        """Resolve (409 if already resolved or closed)."""
        return await _act(request, p, ticket_id, lambda c: actions.resolve(c, ticket_id))

    @router.post("/{ticket_id}/reopen", response_model=TicketOut, responses=ACTION_ERRORS)
    async def reopen(ticket_id: str, request: Request, p: Principal = requires(WRITE)) -> TicketOut:
        """Reopen a resolved case (a new cycle)."""
        return await _act(request, p, ticket_id, lambda c: actions.reopen(c, ticket_id))

    async def _act(request: Request, p: Principal, ticket_id: str, use: Any) -> TicketOut:
        async def both(c: Ctx) -> TicketOut:
            await use(c)
            return await detail(c, ticket_id)

        result: TicketOut = await run(p, request, both)
        return result

    return router
