"""Agents: presence, weighted capacity, eligibility, and the assignment policies that pick one."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
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


SHOWN = 20  # eligible agents an explanation lists, best first


@dataclass
class Shortlist:
    """One demand shape's eligible agents as read (best first by its policy), kept in order as
    the board's reservations change them. `complete`: every eligible agent was read; else
    `bound` is the rank of the last one read, and an agent not read ranks after it."""

    policy: Policy
    rank: Callable[[Agent], tuple[object, ...]]
    entries: list[tuple[tuple[object, ...], str]]
    complete: bool
    bound: tuple[object, ...] | None
    read: tuple[tuple[tuple[object, ...], str], ...]  # the entries as read


class Board:
    """Decisions for several waiting cases made one after another from one read of the agents:
    each decision sees the reservations of the ones before it (load, idle, last assignment), as
    a decision reading the database after them would. Agents another transaction holds
    (`held`) are skipped, not chosen, as the skip-locked reservation does."""

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self.held: set[str] = set()
        self._read: dict[str, Agent] = {}
        self._lists: dict[str, list[Shortlist]] = {}
        self._all: list[Shortlist] = []
        self._keys: dict[tuple[Policy, str], tuple[object, ...]] = {}

    def __contains__(self, agent_id: str) -> bool:
        return agent_id in self._read

    def add(self, agent: Agent) -> None:
        """An agent as read (all of them in one snapshot: the board keeps one state each)."""
        self._read.setdefault(agent.id, agent)
        self.agents.setdefault(agent.id, agent)

    def shortlist(self, policy: Policy, ids: Sequence[str], *, complete: bool) -> Shortlist:
        """One shape's eligible agents as read (`add`ed before)."""
        rank = _RANKS.get(policy, _longest_idle)
        entries = []
        for agent_id in ids:
            key = self._keys.get((policy, agent_id))
            if key is None:
                key = self._keys[(policy, agent_id)] = rank(self._read[agent_id])
            entries.append((key, agent_id))
        entries.sort()  # read in this order already: one pass
        bound = None if complete or not entries else entries[-1][0]
        found = Shortlist(policy, rank, entries, complete, bound, tuple(entries))
        self._all.append(found)
        for agent_id in ids:
            self._lists.setdefault(agent_id, []).append(found)
        return found

    def reset(self) -> None:
        """Forget the reservations made (not `held`): the agents as read."""
        self.agents = dict(self._read)
        for found in self._all:
            found.entries = list(found.read)

    def decide(self, shortlist: Shortlist, demand: Demand, now: datetime) -> Decision | None:
        """Choose for `demand` among the shortlist's agents and reserve in the board: the best
        with room that is not held (`reason` names a busy best); no agent when none is
        eligible. None when what was read cannot tell (fewer than SHOWN agents known to rank
        first, or none free among them): the caller decides that case on the database."""
        shown: list[str] = []
        chosen: str | None = None
        bound, agents, held, weight = shortlist.bound, self.agents, self.held, demand.weight
        for key, agent_id in shortlist.entries:
            if bound is not None and key > bound:
                break
            agent = agents[agent_id]
            if agent.load + weight > agent.capacity:  # `Agent.fits`, inline: a hot loop
                continue
            if len(shown) < SHOWN:
                shown.append(agent_id)
            if chosen is None and agent_id not in held:
                chosen = agent_id
            if chosen is not None and len(shown) == SHOWN:
                break
        if not shown and shortlist.complete:
            return Decision(None, shortlist.policy, 0, (), "no eligible agent")
        if chosen is None or (not shortlist.complete and len(shown) < SHOWN):
            return None
        reason = f"best by {shortlist.policy}"
        if chosen != shown[0]:
            reason = f"{reason}; {shown[0]} was busy"
        self.take(chosen, demand.weight, now)
        return Decision(chosen, shortlist.policy, len(shown), tuple(shown), reason)

    def take(self, agent_id: str, weight: int, now: datetime) -> None:
        """Reserve `weight` units of an agent in the board (as a decision does)."""
        old = self.agents[agent_id]
        new = replace(old, load=old.load + weight, idle_since=None, last_assigned_at=now)
        self.agents[agent_id] = new
        moves: dict[Policy, tuple[tuple[tuple[object, ...], str], ...]] = {}
        for found in self._lists[agent_id]:
            move = moves.get(found.policy)
            if move is None:
                move = moves[found.policy] = (
                    (found.rank(old), agent_id),
                    (found.rank(new), agent_id),
                )
            del found.entries[bisect_left(found.entries, move[0])]
            insort(found.entries, move[1])


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
