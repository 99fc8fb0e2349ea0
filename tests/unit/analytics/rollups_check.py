"""Shared check: reads of whole days and months from the rollups equal reads of 15-minute rows.

Random increments over 35 days, a whole calendar month inside (every kind of component,
histogram bins, re-classification deltas, several batches touching the same rows), are written by
`repository.add_deltas`, the consumers' write path; every `/v1/kpis` and `/v1/trends/categories`
query of the ranges is then asked twice, through the planner (rollups, reduced reads) and with
every 15-minute row read in full, and the answers must be identical. After rebuilding the
rollups by migrating down and up again (the backfills of migrations 0004-0011), they must
still be identical.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from analytics.adapters import repository
from analytics.adapters.orm import COARSE, ROLLUPS, components
from analytics.bootstrap import AnalyticsService
from analytics.domain import components as comp
from analytics.domain.kpis import KPIS, Params
from analytics.domain.parts import WAIT_HISTOGRAMS, coarse_bin, needs
from analytics.service_layer import queries
from sbkit.db.migrate import _config
from tests.unit.analytics.conftest import TENANT, Api

DAY0 = datetime(2026, 10, 29, tzinfo=UTC)
DAYS = 35  # over a whole calendar month (November)
FCR_DAYS = 2
QUEUES = ("q1", "q2", "")
CHANNELS = ("voice", "email", "")
AGENTS = ("a1", "a2", "")
REASONS = ("billing", "returns", "delivery")


class Thresholds(TypedDict, total=False):
    """The KPI GET's threshold parameters (the defaults when absent)."""

    threshold_s: int
    short_abandon_s: int


THRESHOLDS: tuple[Thresholds, ...] = ({}, {"threshold_s": 90, "short_abandon_s": 61})


def _increments(rng: random.Random) -> list[comp.Increment]:
    kind = rng.randrange(9)
    wait = rng.choice([0, 999, 1000, 4_999, 5_000, 20_000, 20_001, rng.randint(0, 4_000_000)])
    if kind == 0:
        return comp.call_offered() + comp.call_answered(wait)
    if kind == 1:
        return comp.call_offered() + comp.call_abandoned(wait)
    if kind == 2:
        ms = {k: rng.randint(0, 600_000) for k in ("talk_ms", "hold_ms", "wrap_ms")}
        return [*comp.call_completed(**ms), comp.Increment("busy_ms", rng.randint(0, 9_000))]
    if kind == 3:
        kind_ = rng.choice(list(comp.SCALES))
        low, high = comp.SCALES[kind_]
        return comp.survey(kind_, rng.randint(low, high))
    if kind == 4:
        return comp.ticket_classified(rng.choice(REASONS), "negative")
    if kind == 5:
        return comp.ticket_opened() + comp.first_response(wait, rng.choice([None, wait // 2]))
    if kind == 6:
        return comp.ticket_resolved(wait, None) + rng.choice([[], comp.ticket_reopened()])
    if kind == 7:
        hours = rng.randint(0, 24 * 9)
        return [comp.Increment("fcr_n", 1), comp.Increment("fcr_rep_h", 1, hours)]
    return [
        comp.Increment("age_gt", rng.choice([1, -1]), rng.randrange(5)),
        comp.Increment("online_ms", rng.randint(0, 900_000)),
    ]


def _reclassified(rng: random.Random, bucket: comp.Bucket) -> list[comp.Increment]:
    """A case of an earlier batch re-classified in its own bucket: -1 the old reason, +1 a new one."""
    old, new = rng.sample(REASONS, 2)
    undo = [comp.Increment(i.name, -i.value) for i in comp.ticket_classified(old, "negative")]
    return undo + comp.ticket_classified(new, "negative")


async def write_random(service: AnalyticsService, rng: random.Random) -> None:
    """Several batches of random increments at random times of the days, through add_deltas."""
    classified: list[comp.Bucket] = []
    # FCR windows close at now - FCR_DAYS, on a 15-minute boundary that may move while the test
    # runs: no data near it, so both answers see the same closed windows
    cutoff = datetime.now(UTC) - timedelta(days=FCR_DAYS)
    for _ in range(6):
        deltas: repository.Deltas = {}
        for _ in range(250):
            at = DAY0 + timedelta(minutes=rng.uniform(0, DAYS * 24 * 60 - 1))
            if abs(at - cutoff) < timedelta(hours=2):
                continue
            bucket = comp.Bucket(
                TENANT,
                comp.interval_of(at),
                rng.choice(QUEUES),
                rng.choice(CHANNELS),
                rng.choice(AGENTS),
            )
            repository.collect(deltas, bucket, _increments(rng))
        for bucket in rng.sample(classified, min(len(classified), 20)):
            repository.collect(deltas, bucket, _reclassified(rng, bucket))
        classified += {b for (b, name, _), v in deltas.items() if name == "classified" and v > 0}
        async with service.runtime.uow() as uow:
            await repository.add_deltas(uow.session, deltas)
            await uow.commit()
    for deltas in _edge_groups():
        async with service.runtime.uow() as uow:
            await repository.add_deltas(uow.session, deltas)
            await uow.commit()


def _edge_groups() -> list[repository.Deltas]:
    """Groups a month read minus its days must get right (and a day for narrowed reads): queue
    "late" (channel "sms") has rows
    only on Nov 1 and Nov 30 (outside the subtracted ranges: all its sums there are 0, and a
    read of the range's rows does not see it); queue "zero" has a row inside them that a later
    batch brought back to 0 (a read of the range's rows sees it, with 0)."""
    late = [
        comp.Bucket(TENANT, at, "late", "sms", "a9")
        for at in (datetime(2026, 11, 1, 3, tzinfo=UTC), datetime(2026, 11, 30, 20, tzinfo=UTC))
    ]
    zero = comp.Bucket(TENANT, datetime(2026, 11, 10, 9, tzinfo=UTC), "zero", "chat", "a8")
    first: repository.Deltas = {}
    for bucket in late:
        incs = comp.call_offered() + comp.call_answered(3_000) + [comp.Increment("fcr_n", 1)]
        repository.collect(first, bucket, incs)
    repository.collect(first, zero, comp.ticket_classified("billing", "negative"))
    # a day (before the random data) whose only row is a message: a narrowed per-day read of
    # other KPIs must still answer it
    only = comp.Bucket(TENANT, datetime(2026, 10, 28, 10, tzinfo=UTC), "q1", "chat", "a1")
    repository.collect(first, only, [comp.Increment("messages", 1)])
    undo = [comp.Increment(i.name, -i.value) for i in comp.ticket_classified("billing", "negative")]
    second: repository.Deltas = {}
    repository.collect(second, zero, undo)
    return [first, second]


def _ranges() -> list[tuple[datetime, datetime, tuple[str, ...]]]:
    """(from, to, intervals): whole days and months, ragged edges, before the data."""
    day = timedelta(days=1)
    return [
        (DAY0, DAY0 + DAYS * day, ("total", "1d")),
        (
            DAY0 + day + timedelta(hours=7, minutes=15),
            DAY0 + 34 * day + timedelta(hours=2, minutes=45),
            ("total", "1d"),
        ),
        (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), ("total", "1d")),
        (DAY0 + 6 * day, DAY0 + 8 * day + timedelta(hours=13), ("total", "1d", "1h")),
        (DAY0 - 2 * day, DAY0 + day + timedelta(minutes=30), ("total", "1d", "1h")),
        # November minus Nov 1 and Nov 30 (whole days, then with ragged edges)
        (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC), ("total", "1d")),
        (
            datetime(2026, 11, 1, 13, 15, tzinfo=UTC),
            datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
            ("total",),
        ),
        # the last 30 days to a month's end: one total's backlog history read up to Dec 1
        # (months only), not before Nov 2 plus the range's own
        TO_MONTH_END,
        # across two months: Oct 30-31, Nov 1-7, 8-14, 15-21 minus Nov 21 (weeks of the month)
        CROSS_MONTH,
    ]


TO_MONTH_END = (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), ("total",))


CROSS_MONTH = (datetime(2026, 10, 30, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC), ("total",))


async def _answers(api: Api) -> list[Any]:
    out: list[Any] = []
    params: dict[str, Any] = {
        "threshold_s": 7,
        "short_abandon_s": 3,
        "fcr_days": FCR_DAYS,
        "variant": "F5",
    }
    for start, end, intervals in _ranges():
        span = {"from": start.isoformat(), "to": end.isoformat()}
        for interval in intervals:
            for group_by in (None, "queue", "channel", "agent"):
                extra = {"group_by": group_by} if group_by else {}
                r = await api.get(
                    "/v1/kpis", **span, **extra, **params, interval=interval, kpi=",".join(KPIS)
                )
                assert r.status_code == 200, r.text
                out.append(r.json())
            r = await api.get("/v1/trends/categories", **span, interval=interval)
            assert r.status_code == 200, r.text
            out.append(r.json())
    # one total (per day), narrowed; [5]: November minus two days
    for start, end, intervals in (_ranges()[0], _ranges()[4], _ranges()[5]):
        span = {"from": start.isoformat(), "to": end.isoformat()}
        for kpi in [*KPIS, "asa,service_level"]:
            for interval in intervals:
                r = await api.get("/v1/kpis", **span, **params, interval=interval, kpi=kpi)
                assert r.status_code == 200, r.text
                out.append(r.json())
    for start, end, _ in (_ranges()[1], _ranges()[-1]):  # by days; a month minus days
        span = {"from": start.isoformat(), "to": end.isoformat()}
        for kpi in KPIS:  # alone: the read carries only this KPI's parts
            for group_by in ("queue", "channel"):
                r = await api.get("/v1/kpis", **span, **params, group_by=group_by, kpi=kpi)
                assert r.status_code == 200, r.text
                out.append(r.json())
    # per queue over November and November minus two days, wait bands at the coarse rollups'
    # block bounds (multiples of 5 up to 60: read from them), inside a block (17, 3) and past
    # the last (61, 90): from every bin
    for start, end, _ in (_ranges()[2], _ranges()[5]):
        span = {"from": start.isoformat(), "to": end.isoformat()}
        for t, short, _ in BANDS:
            r = await api.get(
                "/v1/kpis", **span, **{**params, "threshold_s": t, "short_abandon_s": short},
                group_by="queue", kpi=",".join(KPIS),
            )  # fmt: skip
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


# (T, short-abandon threshold) of the per-queue reads above and whether the coarse rollups
# answer them (every limit 0 or a multiple of 5 up to 60)
BANDS = (
    (20, 5, True),
    (60, 60, True),
    (15, 0, True),
    (17, 5, False),
    (20, 3, False),
    (60, 61, False),
    (90, 10, False),
)


async def assert_rollups_match(
    api: Api, monkeypatch: pytest.MonkeyPatch, rng: random.Random
) -> None:
    """Write random data, then every answer via the rollups and the reduced reads equals the
    answer of reading every 15-minute row in full."""
    await write_random(api.service, rng)
    await _assert_stored_rollups(api)
    planned = await _answers(api)
    with monkeypatch.context() as m:
        m.setattr(queries, "split_periods", lambda start, end, **_: [comp.Piece(start, end, "15m")])
        m.setattr(queries, "needs", lambda kpis, params: None)
        fifteen = await _answers(api)
    assert planned == fifteen
    assert any(row["rows"] for row in planned)  # the ranges hold data
    by_queue = [a for a in planned if a.get("rows") and "queue" in a["rows"][0]]
    assert any({"late", "zero"} <= {r["queue"] for r in a["rows"]} for a in by_queue)
    assert any(
        "zero" in (qs := {r["queue"] for r in a["rows"]}) and "late" not in qs for a in by_queue
    )

    await _assert_narrowed(api)
    await _assert_coarse(api)
    await _assert_weeks(api, monkeypatch)
    _assert_history_coarse()

    runtime = api.service.runtime
    async with runtime.engine.begin() as conn:  # 0011's downgrade: the coarse waits of 0008-0010
        await conn.run_sync(lambda c: command.downgrade(_config(runtime.migrations, c), "0010"))
    with monkeypatch.context() as m:
        m.setattr(repository, "coarse_bin", _coarse_bin_0010)
        await _assert_stored_rollups(api, wait_bins=set(range(62)))
    async with runtime.engine.begin() as conn:  # rebuild the rollups by the migration's backfill
        await conn.run_sync(lambda c: command.downgrade(_config(runtime.migrations, c), "0003"))
        # (0004-0011 rebuild the hourly, 6-hourly, daily, weekly and monthly rollups from the
        # 15-minute rows)
        await conn.run_sync(lambda c: command.upgrade(_config(runtime.migrations, c), "head"))
    await _assert_stored_rollups(api)
    assert await _answers(api) == planned


def _coarse_bin_0010(name: str, bin_: int) -> int:
    """The coarse rollups' bins before 0011: the waits bin for bin up to 60, the rest as 61."""
    return min(bin_, 61) if name in WAIT_HISTOGRAMS else coarse_bin(name, bin_)


# the bins the coarse rollups keep of a wait histogram: 0, each 5-second block's upper bound, 61
WAIT_BINS = {0, *range(5, 61, 5), 61}


async def _assert_stored_rollups(api: Api, *, wait_bins: set[int] = WAIT_BINS) -> None:
    """Every rollup table holds exactly `repository.rollup_sums` of the stored 15-minute rows —
    the same groups (those summing to 0 too), the same values: on PostgreSQL the batch statement
    sums them in SQL, so this checks its periods (UTC hours, 6 hours, days, months), groupings
    and coarse bins against the Python fold — and the coarse ones keep the wait histograms in
    `wait_bins` only."""

    def normal(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(repository.utc(k) if isinstance(k, datetime) else k for k in key)

    async with api.service.runtime.engine.connect() as conn:
        rows = {normal(tuple(r[:-1])): r[-1] for r in await conn.execute(select(components))}
        expected = repository.rollup_sums(rows)
        assert len(expected) == len(ROLLUPS) + len(COARSE)
        for table, sums in expected.items():
            stored = {normal(tuple(r[:-1])): r[-1] for r in await conn.execute(select(table))}
            assert stored == sums, table.name
            assert stored  # the data reaches every rollup
            if table in COARSE.values():
                waits = {k[-1] for k in stored if k[-2] in WAIT_HISTOGRAMS}
                assert waits and waits <= wait_bins, (table.name, sorted(waits))


async def _assert_coarse(api: Api) -> None:
    """A per-queue total of November reads the month (and November minus Nov 1 and Nov 30 its
    days) from the coarse rollups (sketch blocks, waits in 5-second blocks up to 60 s) when its
    bands allow, else every bin (both equal the full read: above)."""
    nov = [
        comp.Piece(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), "month")
    ]
    days = comp.split_periods(
        datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC), months=True
    )
    assert {p.period for p in days} == {"month", "day"}, days
    for t, short, coarse in BANDS:
        wanted = needs(KPIS, Params(threshold_s=t, short_abandon_s=short))
        for pieces, table in ((nov, "kpi_monthly_queue"), (days, "kpi_daily_queue")):
            read = repository._statement(  # the first statement of the read
                pieces, TENANT, "queue", False, None, wanted, False, wanted.quantiles, [], False, []
            )
            sql = str(read.compile(compile_kwargs={"literal_binds": True}))
            assert (f"{table}_blocks" in sql) == coarse, sql
            assert (f"{table} " in sql) != coarse, sql
    # PostgreSQL: step 2 (the bins of the quantiles' blocks) in the same statement, a LATERAL
    # read per picked block of the month's stored bins
    wanted = needs(KPIS, Params())
    pairs = [(name, q) for name, qs in wanted.quantiles.items() for q in qs]
    read = repository._statement(
        nov, TENANT, "queue", False, None, wanted, True, wanted.quantiles, pairs, False, []
    )
    sql = str(read.compile(dialect=postgresql.dialect()))
    assert "LATERAL" in sql and "kpi_monthly_queue.bin BETWEEN" in sql, sql


def _assert_history_coarse() -> None:
    """The backlog history of a per-queue read from Oct 15 (everything before it: the months
    before October, Oct 1-14 as weeks) reads its months and weeks from the coarse rollups (they
    keep its names bin for bin); a read naming a wait histogram (cut at 60 s there) still reads
    the fine ones. The answers of such reads equal the 15-minute reads (above: the history of
    the cross-month range and of the November ranges)."""
    pieces = comp.split_periods(None, datetime(2026, 10, 15, tzinfo=UTC), months=True, weeks=True)
    assert [p.period for p in pieces] == ["month", "week"], pieces

    def sql(names: tuple[str, ...]) -> str:
        read = repository._statement(
            pieces, TENANT, "queue", False, names, None, False, {}, [], False, []
        )
        return str(read.compile(compile_kwargs={"literal_binds": True}))

    # the last 30 days to a month's end: the history up to its end (months) is cheaper than
    # before its start (months and Nov 1 per queue); other ranges keep the history before them
    start, end, _ = TO_MONTH_END
    for group_by in (None, "queue", "channel"):
        assert queries._history_to_end(queries.KpiQuery(start, end, ["backlog"], group_by=group_by))
    for start, end, _ in (CROSS_MONTH, _ranges()[2], _ranges()[5]):
        assert not queries._history_to_end(queries.KpiQuery(start, end, ["backlog"]))
    assert not queries._history_to_end(
        queries.KpiQuery(*TO_MONTH_END[:2], ["backlog"], interval=timedelta(days=1))
    )
    history = sql(queries.CUMULATIVE_PARTS)
    assert "kpi_monthly_queue_blocks" in history and "kpi_weekly_queue_blocks" in history
    assert "kpi_monthly_queue " not in history and "kpi_weekly_queue " not in history
    fine = sql((*queries.CUMULATIVE_PARTS, "ans_wait_s"))
    assert "_blocks" not in fine and "kpi_weekly_queue " in fine, fine


async def _assert_weeks(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A range across two months reads weeks of the month (the per-queue ones from the coarse
    weekly rollup, as the month) and answers exactly what reading it day by day answers."""
    start, end, _ = CROSS_MONTH
    pieces = comp.split_periods(start, end, months=True, weeks=True)
    assert [p.period for p in pieces] == ["day", "week", "day"], pieces  # Nov 1-21 minus Nov 21
    wanted = needs(KPIS, Params())
    read = repository._statement(
        pieces, TENANT, "queue", False, None, wanted, False, wanted.quantiles, [], False, []
    )
    sql = str(read.compile(compile_kwargs={"literal_binds": True}))
    assert "kpi_weekly_queue_blocks" in sql and "kpi_daily_queue_blocks" in sql, sql
    assert "kpi_daily_queue " not in sql, sql
    span = {"from": start.isoformat(), "to": end.isoformat()}

    async def answers() -> list[Any]:
        out = []
        for group_by in (None, "queue", "channel"):
            extra = {"group_by": group_by} if group_by else {}
            for params in THRESHOLDS:
                r = await api.get("/v1/kpis", **span, **extra, **params, kpi=",".join(KPIS))
                assert r.status_code == 200, r.text
                out.append(r.json())
        r = await api.get("/v1/trends/categories", **span)
        assert r.status_code == 200, r.text
        return [*out, r.json()]

    weekly = await answers()
    with monkeypatch.context() as m:  # the same range by its days
        m.setattr(
            queries,
            "split_periods",
            lambda s, e, **kw: comp.split_periods(s, e, hours=kw.get("hours", False)),
        )
        assert await answers() == weekly
    assert all(a["rows"] for a in weekly)


async def _assert_narrowed(api: Api) -> None:
    """A per-day read of asa and service level reads only their components from the daily
    rollup (plus the slots of days holding none of them: Oct 28 has only a message)."""
    wanted = needs(["asa", "service_level"], Params(threshold_s=7))
    start, end = datetime(2026, 10, 27, tzinfo=UTC), DAY0 + timedelta(days=3)
    async with api.service.runtime.uow() as uow:
        got = await repository.sums(
            uow.session,
            tenant=TENANT,
            pieces=[comp.Piece(start, end, "day")],
            by_interval=True,
            needs=wanted,
        )
    assert sorted(at.day for _, at in got if at) == [28, 29, 30, 31]
    read = {name for t in got.values() for name, _ in t.values}
    assert read and read <= set(wanted.names)
    assert not any(t.values for (_, at), t in got.items() if at and at.day == 28)
