"""Cases: statuses with forward-only transitions, the reopen window, joining a message to a case."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    """Case statuses: new → open ⇄ pending → resolved → closed (resolved → open is a reopen)."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


ACTIVE = frozenset({Status.NEW, Status.OPEN, Status.PENDING})
_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.OPEN, Status.PENDING, Status.RESOLVED}),
    Status.OPEN: frozenset({Status.PENDING, Status.RESOLVED}),
    Status.PENDING: frozenset({Status.OPEN, Status.RESOLVED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


class InvalidTransition(ValueError):
    """A status change the case's lifecycle does not allow."""


def check_transition(current: Status, target: Status) -> None:
    """Raise InvalidTransition unless `current → target` is allowed."""
    if target not in _ALLOWED[current]:
        raise InvalidTransition(f"cannot go from {current} to {target}")


def can_reply(status: Status) -> bool:
    """Whether an agent may still reply on a case in this status."""
    return status is not Status.CLOSED


@dataclass(frozen=True)
class CaseRef:
    """What joining needs to know about an existing case."""

    id: str
    customer_id: str
    status: Status
    updated_at: datetime
    resolved_at: datetime | None = None
    thread_ids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Arrival:
    """An inbound message as seen by the joining rules."""

    customer_id: str
    at: datetime
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    def refs(self) -> frozenset[str]:
        """Message-IDs this message points at (In-Reply-To and References)."""
        found = {r for r in (self.in_reply_to, *self.references) if r}
        return frozenset(found)


class JoinKind(StrEnum):
    """What an arrival does to cases."""

    APPEND = "append"
    REOPEN = "reopen"
    NEW = "new"


@dataclass(frozen=True)
class Join:
    """The decision: append to / reopen a case, or open a new one."""

    kind: JoinKind
    case_id: str | None = None


def _decide(case: CaseRef, arrival: Arrival, window: timedelta) -> Join | None:
    if case.status in ACTIVE:
        return Join(JoinKind.APPEND, case.id)
    if (
        case.status is Status.RESOLVED
        and case.resolved_at
        and arrival.at - case.resolved_at <= window
    ):
        return Join(JoinKind.REOPEN, case.id)
    return None


def join(arrival: Arrival, cases: Iterable[CaseRef], *, reopen_window: timedelta) -> Join:
    """Thread refs (own cases only), then the customer's active case, then reopen, else new."""
    own = [c for c in cases if c.customer_id == arrival.customer_id]
    refs = arrival.refs()
    for case in _newest_first(c for c in own if refs & c.thread_ids):
        decided = _decide(case, arrival, reopen_window)
        if decided:
            return decided
    for case in _newest_first(own):
        decided = _decide(case, arrival, reopen_window)
        if decided:
            return decided
    return Join(JoinKind.NEW)


def _newest_first(cases: Iterable[CaseRef]) -> Sequence[CaseRef]:
    """Active cases before resolved ones, newest first within each."""
    return sorted(cases, key=lambda c: (c.status in ACTIVE, c.updated_at), reverse=True)
