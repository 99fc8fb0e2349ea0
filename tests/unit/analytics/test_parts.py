"""What a KPI reads: every KPI's value from the reduced parts equals its value from all parts."""

from __future__ import annotations

import random

import pytest

from analytics.domain import components as comp
from analytics.domain.kpis import CUMULATIVE, FINAL, KPIS, Params, Totals, evaluate
from analytics.domain.parts import PARTS, coarse_bin, coarse_keeps, needs
from analytics.domain.sketch import BLOCK, LogHistogram, quantile_block, quantile_in_block

ALONE = sorted(set(KPIS) - CUMULATIVE - FINAL)  # those read other queries' parts too


def _totals(rng: random.Random) -> Totals:
    t = Totals()
    names = sorted({n for parts in PARTS.values() for n in parts} | {"cat:billing", "x"})
    for _ in range(400):
        name = rng.choice(names)
        if name.endswith("_wait_s"):
            bin_ = comp.wait_second(rng.choice([0, 3_000, 5_000, 5_001, rng.randint(0, 4_000_000)]))
        elif name.startswith("sk:") or name == "fcr_rep_h":
            bin_ = rng.randint(0, 800)
        else:
            bin_ = comp.SCALAR
        t.add(name, bin_, rng.randint(0, 50))
    return t


def test_every_kpi_has_its_parts() -> None:
    assert set(PARTS) == set(KPIS)


@pytest.mark.parametrize("seed", range(30))
def test_each_kpi_from_its_reduced_parts_equals_from_all_parts(seed: int) -> None:
    rng = random.Random(seed)
    t = _totals(rng)
    p = Params(
        variant=rng.choice(["F1", "F2", "F3", "F4", "F5"]),
        threshold_s=rng.choice([0, 5, 20, 3600]),
        short_abandon_s=rng.choice([0, 3, 5, 30]),
        fcr_days=rng.randint(1, 30),
    )
    for kpi in ALONE:
        assert evaluate([kpi], needs([kpi], p).reduce(t), p) == evaluate([kpi], t, p), kpi
    assert evaluate(ALONE, needs(ALONE, p).reduce(t), p) == evaluate(ALONE, t, p)


@pytest.mark.parametrize("seed", range(30))
def test_a_quantile_read_by_blocks_then_bins_equals_the_quantile_of_all_bins(seed: int) -> None:
    rng = random.Random(seed)
    top = rng.choice([3, 40, 900])
    bins = {rng.randint(0, top): rng.choice([0, 1, rng.randint(1, 500)]) for _ in range(60)}
    blocks: dict[int, int] = {}
    for b, n in bins.items():
        blocks[b // BLOCK] = blocks.get(b // BLOCK, 0) + n
    for q in (0.0, 0.5, 0.9, 0.99, 1.0, rng.random()):
        found = quantile_block(blocks, q)
        if found is None:
            assert LogHistogram(bins).quantile_bin(q) is None
            continue
        block, rank, before = found
        inside = {b: n for b, n in bins.items() if b // BLOCK == block}
        assert quantile_in_block(inside, rank, before) == LogHistogram(bins).quantile_bin(q)


def test_the_coarse_rollups_keep_only_names_other_than_sketches_and_waits_bin_for_bin() -> None:
    backlog = ("opened", "reopened", "resolved", "age_gt")
    assert coarse_keeps(backlog) and coarse_keeps(("fcr_n", "fcr_rep_h"))
    assert all(coarse_bin(n, b) == b for n in (*backlog, "fcr_rep_h") for b in range(0, 900, 7))
    assert not coarse_keeps((*backlog, "ans_wait_s"))
    assert not coarse_keeps(("sk:wait",))
    assert coarse_bin("ans_wait_s", 62) == 61  # (why a wait histogram is not kept)


def test_the_coarse_rollups_keep_waits_in_five_second_blocks_at_their_upper_bound() -> None:
    for name in ("ans_wait_s", "ab_wait_s"):
        assert [coarse_bin(name, b) for b in (0, 1, 4, 5, 6, 20, 21, 56, 60, 61, 900)] == [
            0, 5, 5, 5, 10, 20, 25, 60, 60, 61, 61,
        ]  # fmt: skip
        # so a band up to a block's bound sums the same bins from them as from the fine ones
        for t in range(0, 61, 5):
            assert all((coarse_bin(name, b) <= t) == (b <= t) for b in range(200))


def test_only_bands_at_the_wait_blocks_bounds_are_read_from_the_coarse_rollups() -> None:
    blocked = ("sk:wait", "sk:handle", "sk:frt", "sk:res")

    def coarse(t: int, short: int) -> bool:
        return needs(KPIS, Params(threshold_s=t, short_abandon_s=short)).coarse(blocked)

    assert coarse(20, 5) and coarse(10, 0) and coarse(60, 30) and coarse(15, 60)
    assert not coarse(17, 5) and not coarse(20, 3) and not coarse(65, 5) and not coarse(20, 61)
    assert needs(["asa"], Params(threshold_s=17)).coarse(blocked)  # (no wait band read)
