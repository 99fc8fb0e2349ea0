"""The customer aggregate and reversible merges: which rows a merge moved, and moving them back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

EPOCH = datetime.min.replace(tzinfo=UTC)
ROW_KINDS = ("identities", "attributes", "consents", "orders", "timeline")


class Status(StrEnum):
    """Lifecycle of a customer card."""

    ACTIVE = "active"
    MERGED = "merged"
    ERASED = "erased"


class MergeRefused(Exception):
    """A merge that must not happen (same customer, not live)."""


class UndoRefused(Exception):
    """An undo that cannot restore exactly (already undone, survivor merged again, erased)."""


def empty_rows() -> dict[str, set[int]]:
    """No rows of any kind."""
    return {k: set() for k in ROW_KINDS}


@dataclass
class Customer:
    """A customer card: its status and the ids of the rows it owns, by kind."""

    id: str
    status: Status = Status.ACTIVE
    merged_into: str | None = None
    rows: dict[str, set[int]] = field(default_factory=empty_rows)
    created_at: datetime = EPOCH

    @property
    def live(self) -> bool:
        """Whether the card is in use (neither merged away nor erased)."""
        return self.status is Status.ACTIVE


@dataclass
class Merge:
    """A merge of `merged_id` into `survivor_id`, with exactly the rows it moved."""

    id: str
    survivor_id: str
    merged_id: str
    moved: dict[str, tuple[int, ...]]
    undone: bool = False


def merge(survivor: Customer, merged: Customer, *, merge_id: str) -> Merge:
    """Move every row of `merged` to `survivor` and point `merged` at it."""
    if survivor.id == merged.id:
        raise MergeRefused("a customer cannot be merged with itself")
    for c in (survivor, merged):
        if not c.live:
            raise MergeRefused(f"customer {c.id} is {c.status.value}")
    moved = {k: tuple(sorted(merged.rows[k])) for k in ROW_KINDS}
    for k in ROW_KINDS:
        survivor.rows[k] |= merged.rows[k]
        merged.rows[k] = set()
    merged.status, merged.merged_into = Status.MERGED, survivor.id
    return Merge(id=merge_id, survivor_id=survivor.id, merged_id=merged.id, moved=moved)


def undo(m: Merge, survivor: Customer, merged: Customer) -> dict[str, tuple[int, ...]]:
    """Move the merge's rows back and revive `merged`; returns the rows moved back."""
    if m.undone:
        raise UndoRefused("the merge is already undone")
    if not survivor.live:
        raise UndoRefused(f"customer {survivor.id} is {survivor.status.value}; undo that first")
    if merged.status is not Status.MERGED or merged.merged_into != survivor.id:
        raise UndoRefused(f"customer {merged.id} is no longer merged into {survivor.id}")
    back: dict[str, tuple[int, ...]] = {}
    for k in ROW_KINDS:
        rows = set(m.moved.get(k, ())) & survivor.rows[k]
        survivor.rows[k] -= rows
        merged.rows[k] |= rows
        back[k] = tuple(sorted(rows))
    merged.status, merged.merged_into = Status.ACTIVE, None
    m.undone = True
    return back


def survivor_of(a: Customer, b: Customer) -> tuple[Customer, Customer]:
    """(survivor, merged) of an automatic merge: the older card survives, ids break ties."""
    return (a, b) if (a.created_at, a.id) <= (b.created_at, b.id) else (b, a)
