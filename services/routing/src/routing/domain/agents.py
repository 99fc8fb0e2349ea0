"""Agents: presence, weighted capacity, eligibility, and the assignment policies that pick one."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from routing.domain.queues import SkillNeed

# Capacity units a case takes per channel: a call blocks more than a chat, a chat more than an email.
CHANNEL_WEIGHT: dict[str, int] = {
    "voice": 100,
    "webchat": 25,
    "whatsapp": 25,
    "messenger": 25,
    "telegram": 25,
    "sms": 20,
    "email": 10,
    "api": 10,
}
DEFAULT_CAPACITY = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def weight_of(channel: str) -> int:
    """Capacity units a case on this channel takes."""
    return CHANNEL_WEIGHT.get(channel, 10)


class Presence(StrEnum):
    """Whether an agent takes work."""

    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class Policy(StrEnum):
    """How one agent is chosen among the eligible."""

    LONGEST_IDLE = "longest_idle"
    LEAST_LOADED = "least_loaded"
    ROUND_ROBIN = "round_robin"


@dataclass(frozen=True)
class Agent:
    """An agent as assignment sees them."""

    id: str
    presence: Presence = Presence.OFFLINE
    capacity: int = DEFAULT_CAPACITY
    load: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    idle_since: datetime | None = None
    last_assigned_at: datetime | None = None

    def fits(self, weight: int) -> bool:
        """Whether `weight` more units stay within capacity."""
        return self.load + weight <= self.capacity


@dataclass(frozen=True)
class Demand:
    """A waiting case as assignment sees it."""

    case_id: str
    channel: str
    language: str | None
    needs: tuple[SkillNeed, ...] = ()
    last_agent_id: str | None = None
    units: int | None = None

    @property
    def weight(self) -> int:
        """Capacity units this case takes (fixed when the case opened, else by channel)."""
        return self.units if self.units is not None else weight_of(self.channel)


def eligible(agent: Agent, demand: Demand) -> bool:
    """Online, room for the case, every (relaxed) skill, and the case's language."""
    if agent.presence is not Presence.ONLINE or not agent.fits(demand.weight):
        return False
    skills = agent.skills
    for need in demand.needs:  # a loop, not all(<generator>): called for every candidate
        if skills.get(need.skill, 0) < need.level:
            return False
    return demand.language is None or agent.languages.get(demand.language, 0) > 0


@dataclass(frozen=True)
class Decision:
    """Who gets the case and why (explained in every ticket.assigned event)."""

    agent_id: str | None
    policy: str
    considered: int
    eligible: tuple[str, ...]
    reason: str


def _least_loaded(agent: Agent) -> tuple[object, ...]:
    return (agent.load / max(agent.capacity, 1), agent.last_assigned_at or _EPOCH, agent.id)


def _round_robin(agent: Agent) -> tuple[object, ...]:
    return (agent.last_assigned_at or _EPOCH, agent.id)


def _longest_idle(agent: Agent) -> tuple[object, ...]:
    return (agent.load > 0, agent.idle_since or agent.last_assigned_at or _EPOCH, agent.id)


# the sort key of each policy, best first
_RANKS: dict[Policy | str, Callable[[Agent], tuple[object, ...]]] = {
    Policy.LEAST_LOADED: _least_loaded,
    Policy.ROUND_ROBIN: _round_robin,
    Policy.LONGEST_IDLE: _longest_idle,
}


def choose(agents: Iterable[Agent], demand: Demand, *, policy: Policy) -> Decision:
    """Pick an agent: the customer's last agent if eligible, else the policy's best."""
    pool = list(agents)
    rank = _RANKS.get(policy, _longest_idle)
    ok = sorted([a for a in pool if eligible(a, demand)], key=rank)
    names = tuple(a.id for a in ok)
    if not ok:
        return Decision(None, policy, len(pool), names, "no eligible agent")
    if demand.last_agent_id in names:
        return Decision(demand.last_agent_id, policy, len(pool), names, "customer's last agent")
    return Decision(ok[0].id, policy, len(pool), names, f"best by {policy}")


PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


@dataclass(frozen=True)
class Waiting:
    """A case in the backlog."""

    case_id: str
    priority: str
    queued_at: datetime


def backlog_order(cases: Sequence[Waiting]) -> list[Waiting]:
    """Highest priority first, then oldest."""
    return sorted(cases, key=lambda c: (PRIORITY_RANK.get(c.priority, 9), c.queued_at, c.case_id))
