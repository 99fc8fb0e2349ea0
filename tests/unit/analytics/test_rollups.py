"""Daily rollups on SQLite (embedded mode): whole-day reads equal the 15-minute reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from analytics.adapters import repository
from analytics.domain import components as comp
from analytics.domain.components import Piece, exact, split_periods
from tests.unit.analytics.conftest import TENANT, Api
from tests.unit.analytics.rollups_check import assert_rollups_match


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollup_reads_equal_fifteen_minute_reads_on_sqlite(
    api: Api, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    await assert_rollups_match(api, monkeypatch, random.Random(seed))


def test_a_range_splits_into_ragged_edges_whole_days_and_whole_months() -> None:
    def at(month: int, day: int, hour: int = 0) -> datetime:
        return datetime(2026, month, day, hour, tzinfo=UTC)

    assert split_periods(at(11, 3), at(11, 5)) == [Piece(at(11, 3), at(11, 5), "day")]
    assert split_periods(at(11, 3, 9), at(11, 5, 9)) == [
        Piece(at(11, 3, 9), at(11, 4), "15m"),
        Piece(at(11, 4), at(11, 5), "day"),
        Piece(at(11, 5), at(11, 5, 9), "15m"),
    ]
    assert split_periods(at(11, 3, 9), at(11, 3, 17)) == [Piece(at(11, 3, 9), at(11, 3, 17), "15m")]
    assert split_periods(None, at(11, 3, 9)) == [
        Piece(None, at(11, 3), "day"),
        Piece(at(11, 3), at(11, 3, 9), "15m"),
    ]
    assert split_periods(None, at(11, 3, 9), months=True) == [
        Piece(None, at(11, 1), "month"),
        Piece(at(11, 1), at(11, 3), "day"),
        Piece(at(11, 3), at(11, 3, 9), "15m"),
    ]
    assert split_periods(at(9, 30, 1), at(12, 2), months=True) == [
        Piece(at(9, 30, 1), at(10, 1), "15m"),
        Piece(at(10, 1), at(12, 1), "month"),
        Piece(at(12, 1), at(12, 2), "day"),
    ]
    # 29 of October's 31 days: October minus Oct 1 and Oct 31
    assert split_periods(at(10, 2), at(10, 31), months=True) == [
        Piece(at(10, 1), at(11, 1), "month"),
        Piece(at(10, 1), at(10, 2), "day", -1),
        Piece(at(10, 31), at(11, 1), "day", -1),
    ]
    assert exact(split_periods(at(10, 2), at(10, 31), months=True)) == [
        Piece(at(10, 2), at(10, 31), "day")
    ]
    # half a month is read by its days; consecutive whole months are one piece
    assert split_periods(at(10, 16), at(12, 30), months=True) == [
        Piece(at(10, 16), at(11, 1), "day"),
        Piece(at(11, 1), at(1, 1).replace(year=2027), "month"),
        Piece(at(12, 30), at(1, 1).replace(year=2027), "day", -1),
    ]
    # with weekly rollups (per queue), by its weeks of the month (days 1-7, 8-14, 15-21, 22-28,
    # 29-end), a week mostly inside as the week minus its days outside; consecutive weeks (and
    # days) are one piece
    assert split_periods(at(10, 16), at(12, 30), months=True, weeks=True) == [
        Piece(at(10, 15), at(11, 1), "week"),
        Piece(at(10, 15), at(10, 16), "day", -1),
        Piece(at(11, 1), at(1, 1).replace(year=2027), "month"),
        Piece(at(12, 30), at(1, 1).replace(year=2027), "day", -1),
    ]
    assert split_periods(None, at(10, 30), months=True) == [
        Piece(None, at(11, 1), "month"),
        Piece(at(10, 30), at(11, 1), "day", -1),
    ]
    # the last 30 days across two months: 5 weeks minus a day, not 30 days
    assert split_periods(at(10, 15), at(11, 14), months=True, weeks=True) == [
        Piece(at(10, 15), at(11, 15), "week"),
        Piece(at(11, 14), at(11, 15), "day", -1),
    ]
    assert exact(split_periods(at(10, 15), at(11, 14), months=True, weeks=True)) == [
        Piece(at(10, 15), at(11, 14), "day")
    ]
    # most of a month: the month minus its weeks (and days) outside; a few days of a week by
    # their days (consecutive day pieces are one, across a month's end too)
    assert split_periods(at(11, 12), at(12, 2), months=True, weeks=True) == [
        Piece(at(11, 1), at(12, 1), "month"),
        Piece(at(11, 1), at(11, 8), "week", -1),
        Piece(at(11, 8), at(11, 12), "day", -1),
        Piece(at(12, 1), at(12, 2), "day"),
    ]
    assert split_periods(at(11, 16), at(12, 2), months=True, weeks=True) == [
        Piece(at(11, 15), at(11, 29), "week"),
        Piece(at(11, 15), at(11, 16), "day", -1),
        Piece(at(11, 29), at(12, 2), "day"),
    ]
    assert split_periods(at(11, 10), at(12, 1), months=True, weeks=True) == [
        Piece(at(11, 1), at(12, 1), "month"),
        Piece(at(11, 1), at(11, 8), "week", -1),
        Piece(at(11, 8), at(11, 10), "day", -1),
    ]
    # February 2027 has 28 days: no week from the 29th
    assert split_periods(at(2, 15).replace(year=2027), at(3, 1).replace(year=2027)) == [
        Piece(at(2, 15).replace(year=2027), at(3, 1).replace(year=2027), "day")
    ]
    assert split_periods(
        at(2, 16).replace(year=2027), at(3, 1).replace(year=2027), months=True, weeks=True
    ) == [
        Piece(at(2, 15).replace(year=2027), at(3, 1).replace(year=2027), "week"),
        Piece(at(2, 15).replace(year=2027), at(2, 16).replace(year=2027), "day", -1),
    ]
    assert exact(split_periods(None, at(10, 30), months=True)) == [Piece(None, at(10, 30), "day")]


def test_ragged_edges_read_whole_hours_from_the_hourly_rollup() -> None:
    def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=UTC)

    # whole 6 hours (from 00, 06, 12, 18) of the edges from the 6-hourly rollup
    assert split_periods(at(3, 9, 15), at(5, 7, 45), hours=True) == [
        Piece(at(3, 9, 15), at(3, 10), "15m"),
        Piece(at(3, 10), at(3, 12), "hour"),
        Piece(at(3, 12), at(4), "six_hours"),
        Piece(at(4), at(5), "day"),
        Piece(at(5), at(5, 6), "six_hours"),
        Piece(at(5, 6), at(5, 7), "hour"),
        Piece(at(5, 7), at(5, 7, 45), "15m"),
    ]
    assert split_periods(at(3, 22), at(4, 2, 30), hours=True) == [
        Piece(at(3, 22), at(4, 2), "hour"),
        Piece(at(4, 2), at(4, 2, 30), "15m"),
    ]
    assert split_periods(at(3, 9, 15), at(3, 9, 45), hours=True) == [
        Piece(at(3, 9, 15), at(3, 9, 45), "15m")
    ]
    assert split_periods(None, at(3, 9), hours=True) == [
        Piece(None, at(3), "day"),
        Piece(at(3), at(3, 6), "six_hours"),
        Piece(at(3, 6), at(3, 9), "hour"),
    ]
    assert split_periods(at(3, 1, 30), at(3, 23), hours=True) == [
        Piece(at(3, 1, 30), at(3, 2), "15m"),
        Piece(at(3, 2), at(3, 6), "hour"),
        Piece(at(3, 6), at(3, 18), "six_hours"),
        Piece(at(3, 18), at(3, 23), "hour"),
    ]
    assert split_periods(at(3, 7), at(3, 11), hours=True) == [Piece(at(3, 7), at(3, 11), "hour")]
    assert split_periods(at(3, 12), at(5), hours=True) == [
        Piece(at(3, 12), at(4), "six_hours"),
        Piece(at(4), at(5), "day"),
    ]


async def test_a_kept_statement_still_reads_the_rows_stored_since(api: Api) -> None:
    """The first statement of a read is built once per shape and kept (not its result): the
    same read again sees the rows written since."""
    span = {"from": "2026-10-01T00:00:00+00:00", "to": "2026-10-31T00:00:00+00:00"}
    bucket = comp.Bucket(TENANT, datetime(2026, 10, 5, 9, tzinfo=UTC), "q1", "voice", "a1")
    for n in (1, 2):
        deltas: repository.Deltas = {}
        repository.collect(deltas, bucket, comp.call_offered())
        async with api.service.runtime.uow() as uow:
            await repository.add_deltas(uow.session, deltas)
            await uow.commit()
        r = await api.get("/v1/kpis", **span, group_by="queue", kpi="offered,wait_p50")
        assert r.json()["rows"][0]["kpis"]["offered"]["value"] == n
    assert repository._STATEMENTS
