"""A mergeable log-bucket quantile sketch (DDSketch-style, fixed relative accuracy), JSON-serialisable."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ALPHA = 0.01  # relative accuracy: every quantile is within 1% of a true sample value
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)


def bin_of(value_ms: int) -> int:
    """The bucket of a non-negative integer: 0 holds 0, k >= 1 holds (gamma^(k-2), gamma^(k-1)]."""
    if value_ms <= 0:
        return 0
    return math.ceil(math.log(value_ms) / _LOG_GAMMA) + 1


def value_of(bucket: int) -> float:
    """The representative value of a bucket (relative error at most ALPHA)."""
    if bucket <= 0:
        return 0.0
    return 2 * GAMMA ** (bucket - 1) / (GAMMA + 1)


@dataclass
class LogHistogram:
    """Counts per log bucket; merging is adding counts, so it is additive like every component."""

    bins: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, values: Iterable[int]) -> LogHistogram:
        """A sketch of some values."""
        sketch = cls()
        for v in values:
            sketch.add(v)
        return sketch

    def add(self, value_ms: int, count: int = 1) -> None:
        """Count one value."""
        b = bin_of(value_ms)
        self.bins[b] = self.bins.get(b, 0) + count

    def merge(self, other: LogHistogram | Mapping[int, int]) -> None:
        """Add another sketch's counts (commutative, associative)."""
        for b, c in (other.bins if isinstance(other, LogHistogram) else other).items():
            self.bins[b] = self.bins.get(b, 0) + c

    @property
    def count(self) -> int:
        """How many values were counted."""
        return sum(self.bins.values())

    def quantile(self, q: float) -> float | None:
        """The q-quantile (lower rank, as `sorted(values)[floor(q*(n-1))]`), None when empty."""
        b = self.quantile_bin(q)
        return None if b is None else value_of(b)

    def quantile_bin(self, q: float) -> int | None:
        """The bucket of the q-quantile: the first (in bucket order) whose running count passes
        rank floor(q*(n-1)), else the last; None when the count is 0. (`repository.sums`
        computes the same in SQL.)"""
        n = self.count
        if n == 0:
            return None
        rank = math.floor(q * (n - 1))
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen > rank:
                return b
        return max(self.bins)

    def to_json(self) -> dict[str, Any]:
        """A JSON document of the sketch."""
        return {"alpha": ALPHA, "bins": {str(b): c for b, c in sorted(self.bins.items())}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LogHistogram:
        """The sketch of `to_json`."""
        if doc.get("alpha") != ALPHA:
            raise ValueError("sketch of another accuracy")
        return cls({int(b): int(c) for b, c in doc["bins"].items()})


BLOCK = 16  # bins per block of a quantile read in two steps (`quantile_block`, `quantile_in_block`)


def quantile_block(blocks: Mapping[int, int], q: float) -> tuple[int, int, int] | None:
    """Step 1 of `LogHistogram.quantile_bin` from the counts per block of BLOCK bins
    (bin // BLOCK): (the block holding the q-quantile, its rank, the count before the block);
    None when the count is 0 (counts are never negative)."""
    n = sum(blocks.values())
    if n == 0:
        return None
    rank = math.floor(q * (n - 1))
    seen = 0
    for block in sorted(blocks):
        if seen + blocks[block] > rank:
            return block, rank, seen
        seen += blocks[block]
    return max(blocks), rank, seen - blocks[max(blocks)]


def quantile_in_block(bins: Mapping[int, int], rank: int, before: int) -> int:
    """Step 2: the bucket of the quantile from the counts of its block's bins: the first whose
    running count (from `before`) passes `rank`, else the last."""
    seen = before
    for b in sorted(bins):
        seen += bins[b]
        if seen > rank:
            return b
    return max(bins)
