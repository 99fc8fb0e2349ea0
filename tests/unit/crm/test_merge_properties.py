"""Random link/merge/undo sequences keep the identity graph's invariants (hypothesis)."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from crm.domain.graph import IdentityGraph
from crm.domain.handles import HandleKey
from crm.domain.model import MergeRefused, UndoRefused

HANDLES = [HandleKey("email", f"p{i}@example.com") for i in range(4)] + [
    HandleKey("phone", f"+4860100000{i}") for i in range(4)
]
handle = st.sampled_from(HANDLES)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("message"), handle),
        st.tuples(st.just("link"), handle, handle),
        st.tuples(st.just("merge"), handle, handle),
        st.tuples(st.just("undo"), st.integers(0, 20)),
    ),
    max_size=40,
)


def snapshot(g: IdentityGraph) -> dict[str, tuple[str, str | None, dict[str, set[int]]]]:
    """Every customer's status, merge pointer and rows."""
    return {
        c.id: (c.status.value, c.merged_into, copy.deepcopy(c.rows)) for c in g.customers.values()
    }


def assert_invariants(g: IdentityGraph) -> None:
    """Each known handle has exactly one identity row, held by exactly one live customer."""
    holders: dict[HandleKey, list[str]] = {}
    for c in g.customers.values():
        if not c.live:
            assert not any(c.rows.values()), f"{c.id} is merged yet owns rows"
        for row in c.rows["identities"]:
            holders.setdefault(g.handles[row], []).append(c.id)
    for h, owners in holders.items():
        assert len(owners) == 1, f"{h} held by {owners}"
    assert set(holders) == set(g.handles.values())
    for c in g.customers.values():
        assert g.resolve(c.id).live


Op = tuple[str, HandleKey] | tuple[str, HandleKey, HandleKey] | tuple[str, int]


def step(g: IdentityGraph, op: Op, merges: list[str]) -> None:
    """Apply one random operation, checking undo right after each merge it finds."""
    before = snapshot(g)
    match op:
        case ("message", HandleKey() as h):
            g.attribute(h)
        case ("undo", int(n)):
            if merges:
                try:
                    g.undo(merges[n % len(merges)])
                except UndoRefused:
                    assert snapshot(g) == before  # a refused undo changes nothing
        case (kind, HandleKey() as h1, HandleKey() as h2):
            a, b = g.attribute(h1), g.attribute(h2)
            before = snapshot(g)
            try:
                m = g.link(a.id, h2) if kind == "link" else g.merge(a, b)
            except MergeRefused:
                assert a.id == b.id and snapshot(g) == before
                return
            if m is not None:
                merges.append(m.id)
                probe = copy.deepcopy(g)
                probe.undo(m.id)
                assert snapshot(probe) == before, (
                    "undo right after a merge restores the prior state"
                )
        case _:
            raise AssertionError(f"not an operation: {op}")


@settings(max_examples=300, deadline=None)
@given(ops)
def test_random_link_merge_undo_sequences_keep_invariants(
    sequence: list[Op],
) -> None:
    g = IdentityGraph()
    merges: list[str] = []
    for op in sequence:
        step(g, op, merges)
        assert_invariants(g)


def test_undo_of_an_older_merge_waits_for_the_later_one() -> None:
    g = IdentityGraph()
    a, b, c = (g.attribute(h) for h in HANDLES[:3])
    first = g.merge(a, b)
    second = g.merge(c, a)
    try:
        g.undo(first.id)
    except UndoRefused:
        pass
    else:
        raise AssertionError("undo of a merge whose survivor merged again must be refused")
    g.undo(second.id)
    g.undo(first.id)
    assert {x.id for x in (a, b, c) if x.live} == {a.id, b.id, c.id}
    assert g.owner(HANDLES[1]) is b
