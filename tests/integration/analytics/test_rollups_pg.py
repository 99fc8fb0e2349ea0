"""Daily rollups on real PostgreSQL: whole-day reads equal the 15-minute reads, the backfill too."""

from __future__ import annotations

import random

import pytest

from tests.unit.analytics.conftest import Api
from tests.unit.analytics.rollups_check import assert_rollups_match


@pytest.mark.parametrize("seed", [3, 4])
async def test_rollup_reads_equal_fifteen_minute_reads_on_postgresql(
    pg_api: Api, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    await assert_rollups_match(pg_api, monkeypatch, random.Random(seed))
