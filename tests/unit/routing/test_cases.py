"""Case lifecycle and joining: cross-channel, email threading, reopen window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

import pytest

from routing.domain.model import (
    Arrival,
    CaseRef,
    InvalidTransition,
    JoinKind,
    Status,
    check_transition,
    join,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
WINDOW = timedelta(days=3)


class CaseFields(TypedDict, total=False):
    updated_at: datetime
    resolved_at: datetime | None
    thread_ids: frozenset[str]


def case(cid: str, customer: str, status: Status, **kw: Unpack[CaseFields]) -> CaseRef:
    fields: CaseFields = {"updated_at": T0, **kw}
    return CaseRef(cid, customer, status, **fields)


def test_email_then_whatsapp_from_same_customer_joins_the_open_case() -> None:
    decided = join(Arrival("c1", T0), [case("t1", "c1", Status.OPEN)], reopen_window=WINDOW)
    assert (decided.kind, decided.case_id) == (JoinKind.APPEND, "t1")


def test_a_strangers_reply_quoting_someone_elses_message_id_does_not_join_their_case() -> None:
    victim = case("t1", "c1", Status.OPEN, thread_ids=frozenset({"<m1@x>"}))
    arrival = Arrival("c2", T0, in_reply_to="<m1@x>", references=("<m1@x>",))
    assert join(arrival, [victim], reopen_window=WINDOW).kind is JoinKind.NEW


def test_email_reply_threads_into_the_referenced_case_of_its_own_customer() -> None:
    older = case("t1", "c1", Status.OPEN, thread_ids=frozenset({"<a@x>"}))
    newer = case("t2", "c1", Status.OPEN, updated_at=T0 + timedelta(hours=1))
    arrival = Arrival("c1", T0 + timedelta(hours=2), references=("<a@x>",))
    assert join(arrival, [older, newer], reopen_window=WINDOW).case_id == "t1"


def test_resolved_case_reopens_within_the_window_else_a_new_case_opens() -> None:
    resolved = case("t1", "c1", Status.RESOLVED, resolved_at=T0)
    inside = join(Arrival("c1", T0 + WINDOW), [resolved], reopen_window=WINDOW)
    outside = join(
        Arrival("c1", T0 + WINDOW + timedelta(seconds=1)), [resolved], reopen_window=WINDOW
    )
    assert (inside.kind, inside.case_id) == (JoinKind.REOPEN, "t1")
    assert outside.kind is JoinKind.NEW


def test_closed_case_never_reopens() -> None:
    closed = case("t1", "c1", Status.CLOSED, resolved_at=T0)
    assert join(Arrival("c1", T0), [closed], reopen_window=WINDOW).kind is JoinKind.NEW


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.RESOLVED, Status.RESOLVED),
        (Status.CLOSED, Status.OPEN),
        (Status.OPEN, Status.NEW),
        (Status.PENDING, Status.CLOSED),
    ],
)
def test_backward_or_repeated_transitions_are_refused(current: Status, target: Status) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)


def test_forward_path_is_allowed() -> None:
    for a, b in [
        (Status.NEW, Status.OPEN),
        (Status.OPEN, Status.PENDING),
        (Status.PENDING, Status.OPEN),
        (Status.OPEN, Status.RESOLVED),
        (Status.RESOLVED, Status.CLOSED),
    ]:
        check_transition(a, b)
