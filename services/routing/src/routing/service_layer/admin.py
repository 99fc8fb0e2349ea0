"""Queues, agents (with presence) and per-tenant classification rules."""

from __future__ import annotations

import re
from typing import Any

from routing.service_layer.assign import drain, drain_all
from routing.service_layer.context import Ctx
from routing.service_layer.errors import AgentNotFound, AlreadyExists, QueueNotFound, Unprocessable
from sbcontracts.events.routing import AgentPresenceChanged

_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


def _check_id(kind: str, value: str) -> None:
    """Ids are path segments and queue-membership keys: letters, digits, `._-` only."""
    if not _ID.fullmatch(value):
        raise Unprocessable(f"{kind} id must be 1-100 of letters, digits, '.', '_', '-'")


async def put_queue(ctx: Ctx, queue_id: str, values: dict[str, Any], *, create: bool) -> None:
    """Create (409 if it exists) or replace (404 if missing) a queue, then drain its backlog."""
    _check_id("queue", queue_id)
    existing = await ctx.repo.queue(queue_id)
    if create and existing is not None:
        raise AlreadyExists(f"queue {queue_id} exists")
    if not create and existing is None:
        raise QueueNotFound(f"no queue {queue_id}")
    fallback = values["config"].get("fallback_queue")
    if fallback == queue_id:
        raise Unprocessable("a queue cannot fall back to itself")
    if fallback and await ctx.repo.queue(fallback) is None:
        raise Unprocessable(f"fallback queue {fallback} does not exist")
    await ctx.repo.put_queue(queue_id, values, exists=existing is not None)
    if existing is not None:
        await drain_all(ctx, [queue_id])


async def delete_queue(ctx: Ctx, queue_id: str) -> None:
    """Remove a queue (its tickets stay, unqueued)."""
    if await ctx.repo.queue(queue_id) is None:
        raise QueueNotFound(f"no queue {queue_id}")
    await ctx.repo.delete_queue(queue_id)


async def put_agent(ctx: Ctx, agent_id: str, values: dict[str, Any], *, create: bool) -> None:
    """Create (409 if it exists) or update (404 if missing) an agent's profile."""
    _check_id("agent", agent_id)
    for queue_id in values.get("queues") or ():
        _check_id("queue", queue_id)
    existing = await ctx.repo.agent(agent_id, lock=True)
    if create and existing is not None:
        raise AlreadyExists(f"agent {agent_id} exists")
    if not create and existing is None:
        raise AgentNotFound(f"no agent {agent_id}")
    values["queue_keys"] = "|" + "|".join(values["queues"]) + "|" if values.get("queues") else ""
    if existing is None:
        values |= {"presence": "offline", "load": 0, "presence_at": ctx.now}
    elif values["capacity"] < existing.load:
        raise Unprocessable(
            f"capacity {values['capacity']} is below the current load {existing.load}"
        )
    await ctx.repo.put_agent(agent_id, values, exists=existing is not None)
    if existing is not None:
        await drain(ctx, agent_id)


async def delete_agent(ctx: Ctx, agent_id: str) -> None:
    """Remove an agent who owns no open case."""
    if await ctx.repo.agent(agent_id) is None:
        raise AgentNotFound(f"no agent {agent_id}")
    if await ctx.repo.owned_by(agent_id):
        raise Unprocessable("the agent still owns open cases: transfer them first")
    await ctx.repo.delete_agent(agent_id)


async def set_presence(ctx: Ctx, agent_id: str, presence: str) -> None:
    """Online drains the backlog; away/offline re-queues their cases after the grace period."""
    agent = await ctx.repo.agent(agent_id, lock=True)
    if agent is None:
        raise AgentNotFound(f"no agent {agent_id}")
    if agent.presence == presence:
        return
    changes: dict[str, Any] = {"presence": presence, "presence_at": ctx.now}
    if presence == "online" and agent.load == 0:
        changes["idle_since"] = ctx.now
    await ctx.repo.put_agent(agent_id, changes, exists=True)
    await ctx.emit(
        AgentPresenceChanged(
            agent_id=agent_id, presence=presence, previous=str(agent.presence), occurred_at=ctx.now
        ),
        key_id=agent_id,
    )
    if presence == "online":
        await drain(ctx, agent_id)
        return
    at = ctx.now + ctx.knobs.offline_grace
    for ticket in await ctx.repo.owned_by(agent_id):
        await ctx.repo.add_timer(
            ticket.id, kind="requeue", metric=agent_id, cycle=ticket.cycle, due_at=at, fire_at=at
        )


async def replace_rules(ctx: Ctx, rules: list[dict[str, Any]]) -> None:
    """Replace the tenant's classification rules (applies to the next message)."""
    await ctx.repo.replace_rules(rules)
