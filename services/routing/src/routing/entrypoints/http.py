"""HTTP API of routing: /v1/queues, /v1/agents, /v1/rules, /v1/tickets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from routing.entrypoints import http_tickets
from routing.entrypoints.runner import Runner, runner
from routing.entrypoints.schemas import AgentIn, AgentOut, PresenceIn, QueueIn, QueueOut, RulesIn
from routing.service_layer import admin
from routing.service_layer.context import Knobs
from routing.service_layer.errors import AgentNotFound, QueueNotFound
from sbkit.auth import Principal, requires
from sbkit.problems import error_responses
from sbkit.runtime import ServiceRuntime

ADMIN, READ = "routing:admin", "tickets:read"


def _queue_out(row: Any) -> QueueOut:
    return QueueOut(
        id=row.id, name=row.name, position=row.position, policy=row.policy, **row.config
    )


def build_routers(runtime: ServiceRuntime, knobs: Knobs) -> list[APIRouter]:
    """The /v1 routers of routing."""
    run = runner(runtime, knobs)
    return [_queues(run), _agents(run), _rules(run), http_tickets.build_router(run)]


def _queues(run: Runner) -> APIRouter:
    """/v1/queues."""
    router = APIRouter(prefix="/v1", tags=["queues"])

    @router.get("/queues", response_model=list[QueueOut], responses=error_responses(401, 403))
    async def list_queues(request: Request, p: Principal = requires(READ)) -> list[QueueOut]:
        """Queues by position."""
        return [_queue_out(r) for r in await run(p, request, lambda c: c.repo.queues())]

    @router.get(
        "/queues/{queue_id}", response_model=QueueOut, responses=error_responses(401, 403, 404)
    )
    async def get_queue(queue_id: str, request: Request, p: Principal = requires(READ)) -> QueueOut:
        """One queue."""
        row = await run(p, request, lambda c: c.repo.queue(queue_id))
        if row is None:
            raise QueueNotFound(f"no queue {queue_id}")
        return _queue_out(row)

    @router.put(
        "/queues/{queue_id}",
        response_model=QueueOut,
        responses=error_responses(401, 403, 404, 409, 422),
    )
    async def put_queue(
        queue_id: str,
        body: QueueIn,
        request: Request,
        p: Principal = requires(ADMIN),
    ) -> QueueOut:
        """Replace a queue's configuration (404 if it does not exist; POST creates)."""
        values = {
            "name": body.name,
            "position": body.position,
            "policy": body.policy,
            "config": body.config(),
        }
        await run(p, request, lambda c: admin.put_queue(c, queue_id, values, create=False))
        return QueueOut(id=queue_id, **body.model_dump())

    @router.post(
        "/queues/{queue_id}",
        status_code=201,
        response_model=QueueOut,
        responses=error_responses(401, 403, 409, 422),
    )
    async def create_queue(
        queue_id: str, body: QueueIn, request: Request, p: Principal = requires(ADMIN)
    ) -> QueueOut:
        """Create a queue with this id."""
        values = {
            "name": body.name,
            "position": body.position,
            "policy": body.policy,
            "config": body.config(),
        }
        await run(p, request, lambda c: admin.put_queue(c, queue_id, values, create=True))
        return QueueOut(id=queue_id, **body.model_dump())

    @router.delete("/queues/{queue_id}", status_code=204, responses=error_responses(401, 403, 404))
    async def delete_queue(queue_id: str, request: Request, p: Principal = requires(ADMIN)) -> None:
        """Remove a queue."""
        await run(p, request, lambda c: admin.delete_queue(c, queue_id))

    return router


def _agents(run: Runner) -> APIRouter:
    """/v1/agents and presence."""
    router = APIRouter(prefix="/v1", tags=["agents"])

    @router.get("/agents", response_model=list[AgentOut], responses=error_responses(401, 403))
    async def list_agents(request: Request, p: Principal = requires(READ)) -> list[AgentOut]:
        """Agents with presence and load."""
        rows = await run(p, request, lambda c: c.repo.agents())
        return [AgentOut.model_validate(r._mapping) for r in rows]

    @router.get(
        "/agents/{agent_id}", response_model=AgentOut, responses=error_responses(401, 403, 404)
    )
    async def get_agent(agent_id: str, request: Request, p: Principal = requires(READ)) -> AgentOut:
        """One agent."""
        row = await run(p, request, lambda c: c.repo.agent(agent_id))
        if row is None:
            raise AgentNotFound(f"no agent {agent_id}")
        return AgentOut.model_validate(row._mapping)

    @router.post(
        "/agents/{agent_id}",
        status_code=201,
        response_model=AgentOut,
        responses=error_responses(401, 403, 409, 422),
    )
    async def create_agent(
        agent_id: str, body: AgentIn, request: Request, p: Principal = requires(ADMIN)
    ) -> AgentOut:
        """Create an agent (offline until they set presence)."""
        await run(
            p, request, lambda c: admin.put_agent(c, agent_id, body.model_dump(), create=True)
        )
        return await get_agent(agent_id, request, p)

    @router.put(
        "/agents/{agent_id}", response_model=AgentOut, responses=error_responses(401, 403, 404, 422)
    )
    async def update_agent(
        agent_id: str, body: AgentIn, request: Request, p: Principal = requires(ADMIN)
    ) -> AgentOut:
        """Replace an agent's profile."""
        await run(
            p, request, lambda c: admin.put_agent(c, agent_id, body.model_dump(), create=False)
        )
        return await get_agent(agent_id, request, p)

    @router.delete(
        "/agents/{agent_id}", status_code=204, responses=error_responses(401, 403, 404, 422)
    )
    async def delete_agent(agent_id: str, request: Request, p: Principal = requires(ADMIN)) -> None:
        """Remove an agent."""
        await run(p, request, lambda c: admin.delete_agent(c, agent_id))

    @router.put(
        "/agents/{agent_id}/presence",
        response_model=AgentOut,
        responses=error_responses(401, 403, 404),
    )
    async def presence(
        agent_id: str, body: PresenceIn, request: Request, p: Principal = requires("tickets:write")
    ) -> AgentOut:
        """Online drains the backlog; away/offline re-queue the agent's cases after a grace period."""
        await run(p, request, lambda c: admin.set_presence(c, agent_id, body.presence))
        return await get_agent(agent_id, request, p)

    return router


def _rules(run: Runner) -> APIRouter:
    """/v1/rules."""
    router = APIRouter(prefix="/v1", tags=["rules"])

    @router.get("/rules", response_model=RulesIn, responses=error_responses(401, 403))
    async def get_rules(request: Request, p: Principal = requires(READ)) -> RulesIn:
        """The tenant's classification rules (empty: the built-in pl/ru/ro/en rules apply)."""
        rows = await run(p, request, lambda c: c.repo.rules())
        fields = ("category", "pattern", "language", "weight")
        return RulesIn.model_validate({"rules": [{k: r._mapping[k] for k in fields} for r in rows]})

    @router.put("/rules", response_model=RulesIn, responses=error_responses(401, 403, 422))
    async def put_rules(body: RulesIn, request: Request, p: Principal = requires(ADMIN)) -> RulesIn:
        """Replace the tenant's classification rules."""
        await run(
            p, request, lambda c: admin.replace_rules(c, [r.model_dump() for r in body.rules])
        )
        return body

    return router
