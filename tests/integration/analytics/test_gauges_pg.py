"""Prometheus gauges of the current interval on real PostgreSQL: every KPI equals what
`GET /v1/kpis` answers for that interval (backlog, aging, FCR and occupancy too), a tenant gone
quiet keeps only its open work, and a refresh with the database unreachable keeps the app up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from analytics.domain.kpis import KPIS
from analytics.entrypoints import live
from analytics.service_layer import queries
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Channel
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    TicketOpened,
    TicketReopened,
    TicketResolved,
)
from sbkit.db.engine import make_engine, make_sessionmaker
from tests.conftest import unique
from tests.fakes.logs import record_logs
from tests.unit.analytics.conftest import T0, Api, call, deliver

AT = T0 + timedelta(minutes=10)  # "now": inside the interval [T0, T0 + 15 min)
LATER = T0 + timedelta(minutes=20)  # the next interval, with no event of its own
CLOSED = "postgresql+asyncpg://sb:sb@127.0.0.1:1/sb"  # nothing listens on port 1
SLOW_KPIS = {"backlog", "occupancy", *(k for k in KPIS if k.startswith("backlog_age_"))}


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _ev(tenant: str, data: EventData) -> CloudEvent[Any]:
    return new_event(data, tenant_id=tenant, source="test")


def _events(tenant: str) -> list[CloudEvent[Any]]:
    """t1 open since 2 h before the interval (aged 1-4 h); t2 resolved in it and reopened (a repeat
    contact: not FCR, open again, under 1 h); t3 resolved for good; ola online since an hour before
    with a 4-minute call, ben online 4 minutes; calls offered, answered and abandoned."""

    def case(ticket: str, customer: str) -> dict[str, Any]:
        return {"ticket_id": ticket, "customer_id": customer, "queue": "billing"}

    def presence(agent: str, state: str, minutes: float) -> CloudEvent[Any]:
        return _ev(
            tenant, AgentPresenceChanged(agent_id=agent, presence=state, occurred_at=_at(minutes))
        )

    opened = [("t1", "c1", -120), ("t2", "c2", -180), ("t3", "c3", -30)]
    return [
        *(
            _ev(tenant, TicketOpened(**case(t, c), channel=Channel.EMAIL, occurred_at=_at(m)))
            for t, c, m in opened
        ),
        _ev(tenant, TicketResolved(**case("t2", "c2"), occurred_at=_at(2))),
        _ev(tenant, TicketResolved(**case("t3", "c3"), occurred_at=_at(3))),
        _ev(tenant, TicketReopened(**case("t2", "c2"), cycle=2, occurred_at=_at(5))),
        presence("ola", "online", -60),
        presence("ben", "online", 5),
        presence("ben", "offline", 9),
        call("offered", "k1", tenant=tenant, minutes=1),
        call("answered", "k1", tenant=tenant, minutes=1.5, wait_ms=30_000, agent="ola"),
        call("completed", "k1", tenant=tenant, minutes=8, agent="ola", talk_ms=240_000),
        call("offered", "k2", tenant=tenant, minutes=2),
        call("abandoned", "k2", tenant=tenant, minutes=2.5, wait_ms=12_000),
    ]


def _freeze(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    """`GET /v1/kpis` reads at `at` too (open presence spans end there, FCR windows close)."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls.fromtimestamp(at.timestamp(), tz)

    monkeypatch.setattr(queries, "datetime", Frozen)


async def _scraped(api: Api, tenant: str) -> dict[str, float]:
    """The tenant's current-interval gauges as /metrics shows them: kpi -> value."""
    text = (await api.client.get("/metrics")).text
    return {
        s.labels["kpi"]: s.value
        for family in text_string_to_metric_families(text)
        if family.name == "sb_analytics_kpi_current_interval"
        for s in family.samples
        if s.labels["tenant"] == tenant
    }


async def _answered(api: Api, tenant: str, start: datetime) -> dict[str, Any]:
    """Every KPI `GET /v1/kpis` answers for the interval from `start`: kpi -> value."""
    span = {"from": start.isoformat(), "to": (start + timedelta(minutes=15)).isoformat()}
    r = await api.get("/v1/kpis", tenant=tenant, **span)
    assert r.status_code == 200, r.text
    return {k: v["value"] for k, v in r.json()["rows"][0]["kpis"].items()}


def _shown(answer: dict[str, Any]) -> dict[str, float]:
    """What the gauges must show for an answer: a `null` KPI has no sample."""
    return {k: float(v) for k, v in answer.items() if v is not None}


class Clock:
    """A clock a test moves."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def test_every_kpi_has_a_gauge_equal_to_the_api_for_the_current_interval(
    pg_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, calls_only = unique("gauges"), unique("calls")
    for event in [*_events(tenant), call("offered", "x1", tenant=calls_only, minutes=3)]:
        await deliver(pg_api.service, event)
    _freeze(monkeypatch, AT)
    clock = Clock(AT)
    board = live.Gauges(pg_api.service.runtime, clock=clock)
    await board.refresh()

    answer = await _answered(pg_api, tenant, T0)
    assert await _scraped(pg_api, tenant) == _shown(answer)
    assert answer["backlog"] == 2 and answer["backlog_age_1h_4h"] == 1  # t1 and t2's 2nd cycle
    assert answer["backlog_age_under_1h"] == 1 and answer["fcr"] == 0.5  # t2 came back
    # ola online 10 min (the span still open at AT) and ben 4 min; busy: the 4-minute call
    assert answer["occupancy"] == pytest.approx(240 / (600 + 240), abs=1e-12)
    assert answer["fcr_final"] is None and "fcr_final" not in await _scraped(pg_api, tenant)
    assert (await _scraped(pg_api, calls_only))["offered"] == 1.0

    # the next interval has no event: the tenant's open work stays, its calls' gauges go; the
    # tenant with nothing open has no gauge left
    clock.at = LATER
    _freeze(monkeypatch, LATER)
    await board.refresh()
    quiet = _shown(await _answered(pg_api, tenant, LATER - timedelta(minutes=5)))
    assert await _scraped(pg_api, tenant) == {k: v for k, v in quiet.items() if k in SLOW_KPIS}
    assert quiet["backlog"] == 2 and quiet["occupancy"] == 0.0  # ola still online, idle
    assert await _scraped(pg_api, calls_only) == {}


async def test_a_refresh_with_the_database_unreachable_keeps_the_app_serving(
    pg_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = unique("gauges")
    for event in _events(tenant):
        await deliver(pg_api.service, event)
    _freeze(monkeypatch, AT)
    runtime = pg_api.service.runtime
    clock = Clock(AT)
    logs = record_logs(monkeypatch, live).events
    async with live.gauges(runtime, every_s=0.05, slow_every_s=0.05, clock=clock):
        shown = await _until(lambda s: "backlog" in s and "offered" in s, pg_api, tenant)
        reachable = runtime.sessionmaker
        dead = make_engine(CLOSED)
        monkeypatch.setattr(runtime, "sessionmaker", make_sessionmaker(dead))
        await _until(lambda _: _failures(logs) >= {"fast", "slow"}, pg_api, tenant)
        assert (await pg_api.client.get("/healthz")).status_code == 200
        assert await _scraped(pg_api, tenant) == shown  # the interval's last values, kept

        clock.at = LATER  # their interval ended while the database was away: they go
        await _until(lambda s: s == {}, pg_api, tenant)

        monkeypatch.setattr(runtime, "sessionmaker", reachable)  # back: the loops go on
        await _until(lambda s: s.get("backlog") == 2.0, pg_api, tenant)
    await dead.dispose()


def _failures(logs: list[dict[str, Any]]) -> set[str]:
    return {e["cadence"] for e in logs if e["event"] == "analytics.gauges_failed"}


async def _until(
    done: Callable[[dict[str, float]], bool], api: Api, tenant: str
) -> dict[str, float]:
    for _ in range(300):
        scraped = await _scraped(api, tenant)
        if done(scraped):
            return scraped
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached: {await _scraped(api, tenant)}")
