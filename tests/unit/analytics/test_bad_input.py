"""Bad input on every analytics route is a 422 naming the valid choices, and no route shows one
tenant's data (derived KPIs included) to another."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sbcontracts.envelope import new_event
from sbcontracts.events.common import Channel
from sbcontracts.events.notifier import NotificationScheduled, NotificationSent
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    Category,
    Priority,
    Sentiment,
    TicketClassified,
    TicketOpened,
)
from tests.unit.analytics.conftest import T0, TENANT, Api, call, deliver

RANGE = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
REVERSED = {"from": RANGE["to"], "to": RANGE["from"]}
DERIVED = "occupancy,fcr,alerts_sent,backlog_age_under_1h,negative_sentiment_share"


async def _activity(api: Api) -> None:
    """acme: calls, an agent online, a classified open case, a sent alert."""
    at = T0 + timedelta(minutes=1)
    common: dict[str, Any] = {"ticket_id": "t1", "customer_id": "c1", "occurred_at": at}
    alert: dict[str, Any] = {
        "notification_id": "n1",
        "customer_id": "c1",
        "shipment_id": "s1",
        "episode": 1,
        "delay_reason": "stalled",
        "reason": "allowed",
        "channel": Channel.SMS,
        "occurred_at": at,
    }
    for data in (
        AgentPresenceChanged(agent_id="ola", presence="online", occurred_at=T0),
        TicketOpened(**common),
        TicketClassified(
            **common,
            category=Category.BILLING,
            sentiment=Sentiment.NEGATIVE,
            priority=Priority.NORMAL,
        ),
        NotificationScheduled(**alert, not_before=at),
        NotificationSent(**alert, provider="sms"),
    ):
        await deliver(api.service, new_event(data, tenant_id=TENANT, source="test"))
    for i in range(3):
        await deliver(api.service, call("offered", f"c{i}", queue="sales"))
        await deliver(
            api.service, call("completed", f"c{i}", queue="sales", agent="ola", talk_ms=60_000)
        )


@pytest.mark.parametrize(
    ("url", "params", "valid"),
    [
        ("/v1/kpis", {"kpi": "fcr,happiness"}, "backlog_age_over_3d"),
        ("/v1/kpis", {"group_by": "planet"}, "agent"),
        ("/v1/kpis/stream", {"variant": "F9"}, "F1"),
        ("/v1/trends/categories", {"interval": "2h"}, "1h"),
    ],
)
async def test_unknown_names_on_every_route_list_the_valid_ones(
    api: Api, url: str, params: dict[str, str], valid: str
) -> None:
    r = await api.get(url, **{**RANGE, **params})
    assert r.status_code == 422, r.text
    assert valid in r.json()["valid"]


async def test_unknown_kpi_threshold_is_422_listing_the_valid_ones(api: Api) -> None:
    body = {"thresholds": {"mood": {"green_at": 1, "red_at": 0, "direction": "higher_is_better"}}}
    r = await api.client.put("/v1/kpis/thresholds", json=body, headers=api.auth())
    assert r.status_code == 422 and "occupancy" in r.json()["valid"]


@pytest.mark.parametrize("url", ["/v1/kpis", "/v1/trends/categories", "/v1/staffing"])
async def test_reversed_or_too_long_ranges_are_422_everywhere(api: Api, url: str) -> None:
    assert (await api.get(url, **REVERSED)).status_code == 422
    assert (await api.get(url, **{**RANGE, "to": RANGE["from"]})).status_code == 422
    too_long = {"from": (T0 - timedelta(days=401)).isoformat(), "to": RANGE["to"]}
    assert (await api.get(url, **too_long)).status_code == 422


@pytest.mark.parametrize("days", [0, 31, "week"])
async def test_fcr_window_outside_1_to_30_days_is_422(api: Api, days: Any) -> None:
    assert (await api.get("/v1/kpis", kpi="fcr", fcr_days=days, **RANGE)).status_code == 422


async def test_another_tenant_sees_none_of_it(api: Api) -> None:
    await _activity(api)
    mine = await api.get("/v1/kpis", kpi=DERIVED, **RANGE)
    values = {k: v["value"] for k, v in mine.json()["rows"][0]["kpis"].items()}
    assert values["alerts_sent"] == 1 and values["occupancy"] is not None  # acme sees its data

    theirs = await api.get("/v1/kpis", kpi=DERIVED, tenant="globex", **RANGE)
    assert {k: v["value"] for k, v in theirs.json()["rows"][0]["kpis"].items()} == {
        "occupancy": None,
        "fcr": None,
        "alerts_sent": 0,
        "backlog_age_under_1h": 0,
        "negative_sentiment_share": None,
    }
    by_agent = await api.get(
        "/v1/kpis", kpi="occupancy", group_by="agent", tenant="globex", **RANGE
    )
    assert by_agent.json()["rows"] == []
    trends = await api.get("/v1/trends/categories", tenant="globex", **RANGE)
    assert trends.json()["rows"] == []
    staffing = await api.get("/v1/staffing", tenant="globex", **RANGE)
    assert staffing.json()["rows"] == []
    at = (T0 + timedelta(minutes=5)).isoformat()
    stream = await api.get("/v1/kpis/stream", tenant="globex", at=at, max_events=1)
    snap = next(line[5:] for line in stream.text.splitlines() if line.startswith("data:"))
    assert '"top_reasons": []' in snap and '"online": 0' in snap and '"needed": 0' in snap
