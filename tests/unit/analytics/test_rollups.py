"""Daily rollups on SQLite (embedded mode): whole-day reads equal the 15-minute reads."""

from __future__ import annotations

import random

import pytest

from analytics.domain.components import split_days
from tests.unit.analytics.conftest import T0, Api
from tests.unit.analytics.rollups_check import DAY0, assert_rollups_match


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollup_reads_equal_fifteen_minute_reads_on_sqlite(
    api: Api, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    await assert_rollups_match(api, monkeypatch, random.Random(seed))


def test_a_range_splits_into_ragged_edges_and_whole_days() -> None:
    day = DAY0.replace(hour=0)
    late = day + (T0 - T0.replace(hour=0))  # 09:00
    assert split_days(day, day.replace(day=day.day + 2)) == [
        (day, day.replace(day=day.day + 2), True)
    ]
    assert split_days(late, late.replace(day=late.day + 2)) == [
        (late, day.replace(day=day.day + 1), False),
        (day.replace(day=day.day + 1), day.replace(day=day.day + 2), True),
        (day.replace(day=day.day + 2), late.replace(day=late.day + 2), False),
    ]
    assert split_days(late, late.replace(hour=17)) == [(late, late.replace(hour=17), False)]
    assert split_days(None, late) == [(None, day, True), (day, late, False)]
