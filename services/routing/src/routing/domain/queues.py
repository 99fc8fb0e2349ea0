"""Queues: ordered filters that match a case, skill requirements that relax as it waits, SLA policy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from routing.domain.calendar import BusinessHours


@dataclass(frozen=True)
class CaseFacts:
    """What queue filters look at."""

    category: str
    language: str | None
    channel: str
    tier: str | None = None


@dataclass(frozen=True)
class Filter:
    """One filter of a queue; an empty set matches anything."""

    categories: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()

    def matches(self, facts: CaseFacts) -> bool:
        """Whether every non-empty criterion holds."""
        return all(
            not allowed or value in allowed
            for allowed, value in (
                (self.categories, facts.category),
                (self.languages, facts.language),
                (self.channels, facts.channel),
                (self.tiers, facts.tier),
            )
        )


@dataclass(frozen=True)
class SkillNeed:
    """A skill at a minimum proficiency (1-5)."""

    skill: str
    level: int


@dataclass(frozen=True)
class RelaxStep:
    """After `after_s` seconds of waiting, lower every skill requirement by `lower_by` levels."""

    after_s: int
    lower_by: int


@dataclass(frozen=True)
class SlaTargets:
    """SLA targets of one priority, in seconds of business time (None = no target)."""

    first_response_s: int | None = None
    next_response_s: int | None = None
    resolution_s: int | None = None


@dataclass(frozen=True)
class Queue:
    """A queue as routing decides with it."""

    id: str
    position: int = 0
    filters: tuple[Filter, ...] = ()
    skills: tuple[SkillNeed, ...] = ()
    relax: tuple[RelaxStep, ...] = ()
    sla: dict[str, SlaTargets] = field(default_factory=dict)
    hours: BusinessHours | None = None
    fallback_queue: str | None = None
    escalate_after_s: int | None = None
    auto_reply: str | None = None
    callback: bool = False
    policy: str = "longest_idle"

    def matches(self, facts: CaseFacts) -> bool:
        """A queue without filters is a catch-all; otherwise any filter may match."""
        return not self.filters or any(f.matches(facts) for f in self.filters)

    def needs_at(self, waited_s: float) -> tuple[SkillNeed, ...]:
        """Skill requirements after relaxing for `waited_s` seconds (level ≤ 0 drops a skill)."""
        lowered = sum(s.lower_by for s in self.relax if waited_s >= s.after_s)
        return tuple(
            SkillNeed(n.skill, n.level - lowered) for n in self.skills if n.level - lowered > 0
        )


def match_queue(queues: Sequence[Queue], facts: CaseFacts) -> Queue | None:
    """The first queue (by position) whose filters match."""
    for queue in sorted(queues, key=lambda q: (q.position, q.id)):
        if queue.matches(facts):
            return queue
    return None
