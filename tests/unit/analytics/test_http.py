"""The HTTP API: KPI values and lights, bad input as 422, tenants apart, staffing, stream, page."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.entrypoints import live
from sbcontracts.envelope import new_event
from sbcontracts.events.routing import Category, Priority, Sentiment, TicketClassified
from tests.unit.analytics.conftest import T0, TENANT, Api, call, deliver, survey

RANGE = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}


async def _calls(api: Api) -> None:
    """q1: answered at 10 s and 30 s, abandoned at 2 s and 40 s; q2: one answered at 5 s."""
    s = api.service
    for i, (kind, wait, queue) in enumerate(
        [
            ("answered", 10_000, "q1"),
            ("answered", 30_000, "q1"),
            ("abandoned", 2_000, "q1"),
            ("abandoned", 40_000, "q1"),
            ("answered", 5_000, "q2"),
        ]
    ):
        await deliver(s, call("offered", f"c{i}", queue=queue))
        await deliver(s, call(kind, f"c{i}", queue=queue, minutes=1, wait_ms=wait))
    await deliver(
        s, call("completed", "c0", minutes=20, talk_ms=200_000, hold_ms=10_000, wrap_ms=30_000)
    )


def _values(body: dict[str, Any], row: int = 0) -> dict[str, Any]:
    return {k: v["value"] for k, v in body["rows"][row]["kpis"].items()}


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("F1", 3 / 5), ("F2", 2 / 3), ("F3", 2 / 5), ("F4", 2 / 4), ("F5", 3 / 5)],
)
async def test_service_level_of_each_variant(api: Api, variant: str, expected: float) -> None:
    await _calls(api)
    r = await api.get("/v1/kpis", kpi="service_level", variant=variant, **RANGE)
    assert r.status_code == 200, r.text
    assert _values(r.json())["service_level"] == pytest.approx(expected, abs=1e-12)


async def test_kpis_grouped_by_queue_with_lights(api: Api) -> None:
    await _calls(api)
    r = await api.get("/v1/kpis", kpi="abandonment_rate,asa,aht,offered", group_by="queue", **RANGE)
    rows = {row["queue"]: row["kpis"] for row in r.json()["rows"]}
    assert rows["q1"]["abandonment_rate"] == {"value": 1 / 3, "colour": "red"}  # short abandon out
    assert rows["q1"]["asa"]["value"] == 20.0 and rows["q1"]["asa"]["colour"] == "green"
    assert rows["q1"]["aht"]["value"] == 240.0 and rows["q2"]["offered"]["value"] == 1


async def test_intervals_split_by_event_time(api: Api) -> None:
    await _calls(api)
    r = await api.get("/v1/kpis", kpi="answered,handled", interval="15m", **RANGE)
    rows = r.json()["rows"]
    assert [(x["interval_start"], _values(r.json(), i)) for i, x in enumerate(rows)] == [
        (T0.isoformat(), {"answered": 3, "handled": 0}),
        ((T0 + timedelta(minutes=15)).isoformat(), {"answered": 0, "handled": 1}),
    ]


async def test_surveys_csat_nps_ces(api: Api) -> None:
    for i, (kind, score) in enumerate(
        [("csat", 5), ("csat", 2), ("nps", 10), ("nps", 3), ("nps", 7), ("ces", 6)]
    ):
        await deliver(api.service, survey(kind, score, f"r{i}"))
    r = await api.get("/v1/kpis", kpi=["csat", "nps", "ces"], **RANGE)
    assert _values(r.json()) == {"csat": 0.5, "nps": 0.0, "ces": 6.0}


@pytest.mark.parametrize(
    ("params", "valid"),
    [
        ({"kpi": "happiness"}, "service_level"),
        ({"variant": "F9"}, "F5"),
        ({"group_by": "planet"}, "queue"),
        ({"interval": "7m"}, "15m"),
    ],
)
async def test_unknown_names_are_422_listing_the_valid_ones(
    api: Api, params: dict[str, str], valid: str
) -> None:
    r = await api.get("/v1/kpis", **{**RANGE, **params})
    assert r.status_code == 422 and valid in r.json()["valid"]


async def test_reversed_range_and_range_over_retention_are_422(api: Api) -> None:
    r = await api.get("/v1/kpis", **{"from": RANGE["to"], "to": RANGE["from"]})
    assert r.status_code == 422
    r = await api.get(
        "/v1/kpis", **{"from": (T0 - timedelta(days=500)).isoformat(), "to": RANGE["to"]}
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("path", "when"),
    [
        ("/v1/staffing", {"to": "0001-01-01T00:01:00Z"}),  # a day before it is no datetime
        ("/v1/kpis", {"from": "0001-01-01T00:00:00+01:00", "to": "2026-11-20T00:00:00Z"}),
        ("/v1/kpis", {"from": "2026-11-20T00:00:00Z", "to": "9999-12-31T23:59:59Z"}),
        ("/v1/trends/categories", {"from": "1969-12-31T00:00:00Z", "to": "1970-01-02T00:00:00Z"}),
        ("/v1/kpis/stream", {"at": "0001-01-01T00:00:00Z"}),
    ],
)
async def test_datetimes_outside_the_supported_years_are_422(
    api: Api, path: str, when: dict[str, str]
) -> None:
    r = await api.get(path, **when)
    assert r.status_code == 422 and "outside 1970-9000" in r.json()["detail"], r.text


async def test_another_tenant_sees_nothing(api: Api) -> None:
    await _calls(api)
    r = await api.get("/v1/kpis", kpi="offered,service_level", tenant="globex", **RANGE)
    assert _values(r.json()) == {"offered": 0, "service_level": None}


async def test_thresholds_set_per_tenant_change_the_colour(api: Api) -> None:
    await _calls(api)
    body = {"thresholds": {"asa": {"green_at": 5, "red_at": 15, "direction": "lower_is_better"}}}
    r = await api.client.put("/v1/kpis/thresholds", json=body, headers=api.auth())
    assert r.status_code == 200 and r.json()["asa"]["red_at"] == 15
    r = await api.get("/v1/kpis", kpi="asa", **RANGE)
    assert r.json()["rows"][0]["kpis"]["asa"]["colour"] == "red"
    r = await api.get("/v1/kpis", kpi="asa", tenant="globex", **RANGE)
    assert r.json()["rows"][0]["kpis"]["asa"]["colour"] == "none"
    bad = {"thresholds": {"asa": {"green_at": 15, "red_at": 5, "direction": "lower_is_better"}}}
    assert (
        await api.client.put("/v1/kpis/thresholds", json=bad, headers=api.auth())
    ).status_code == 422
    read_only = api.auth(scopes=("kpis:read",))
    assert (
        await api.client.put("/v1/kpis/thresholds", json=body, headers=read_only)
    ).status_code == 403


async def test_category_trends_and_backlog(api: Api) -> None:
    for i, cat in enumerate([Category.BILLING, Category.BILLING, Category.RETURNS]):
        data = TicketClassified(
            ticket_id=f"t{i}",
            customer_id="c",
            occurred_at=T0,
            category=cat,
            sentiment=Sentiment.NEGATIVE,
            priority=Priority.NORMAL,
        )
        await deliver(api.service, new_event(data, tenant_id=TENANT, source="routing"))
    r = await api.get("/v1/trends/categories", interval="1h", **RANGE)
    assert r.json()["rows"][0]["categories"]["billing"] == {"count": 2, "share": 2 / 3}


async def test_staffing_by_erlang_c_and_a(api: Api) -> None:
    for i in range(100):  # 100 calls in 15 minutes, each handled in 180 s
        await deliver(api.service, call("offered", f"s{i}", queue="sales", minutes=i * 0.1))
        await deliver(
            api.service, call("completed", f"s{i}", queue="sales", minutes=5, talk_ms=180_000)
        )
    r = await api.get(
        "/v1/staffing", queue="sales", patience_s=120, shrinkage=0.3, max_occupancy=1, **RANGE
    )
    row = r.json()["rows"][0]
    assert row["aht_s"] == 180.0 and row["erlang_c"]["agents"] == 24  # A = 20 Erlangs: SL 80.9%
    assert row["erlang_c"]["scheduled"] == 35 and row["erlang_a"]["agents"] <= 24
    assert (await api.get("/v1/staffing", shrinkage=1.5)).status_code == 422


async def test_stream_sends_a_snapshot_with_lights(api: Api) -> None:
    await _calls(api)
    r = await api.get("/v1/kpis/stream", at=(T0 + timedelta(minutes=5)).isoformat(), max_events=1)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    data = next(line[5:] for line in r.text.splitlines() if line.startswith("data:"))
    snap = json.loads(data)
    assert snap["current"]["offered"] == {"value": 5, "colour": "none"}
    assert snap["current"]["service_level"]["colour"] == "red"  # 60% under the 80% default


async def test_stream_needs_a_token(api: Api) -> None:
    assert (await api.client.get("/v1/kpis/stream")).status_code == 401


async def test_gauges_show_the_current_interval(api: Api) -> None:
    now = datetime.now(UTC)
    await deliver(api.service, call("offered", "live", minutes=(now - T0).total_seconds() / 60))
    await live.refresh_gauges(api.service.runtime)
    metrics = (await api.client.get("/metrics")).text
    assert 'sb_analytics_kpi_current_interval{kpi="offered",tenant="acme"} 1.0' in metrics


async def test_dashboard_page_consumes_the_stream(api: Api) -> None:
    r = await api.client.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/v1/kpis/stream" in r.text and "data-kpi" not in r.text.split("<script>")[0]
