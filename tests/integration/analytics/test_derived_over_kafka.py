"""Derived KPIs on PostgreSQL over Kafka: one customer's cases consumed from several partitions at
once (the per-customer lock keeps the recompute exact), presence, an alert, and a replay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Channel
from sbcontracts.events.notifier import (
    NotificationDelivered,
    NotificationScheduled,
    NotificationSent,
)
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    Category,
    Priority,
    Sentiment,
    TicketClassified,
    TicketOpened,
    TicketResolved,
)
from sbcontracts.topics import partition_key
from sbkit.bus.ports import OutgoingRecord
from tests.integration.analytics.conftest import Stack
from tests.unit.analytics.conftest import T0, TENANT, call

RANGE = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
KPIS = "fcr,occupancy,alerts_sent,alerts_ahead_of_contact,alert_lead_time,backlog_age_under_1h"
EXPECTED = {
    "fcr": 0.0,  # t1 resolved at 10 min, the customer came back on billing at 30 min
    "occupancy": pytest.approx(1 / 3, abs=1e-12),  # 10 min of a call in 30 min online
    "alerts_sent": 1,
    "alerts_ahead_of_contact": 1,
    "alert_lead_time": 300.0,  # delivered at 25 min, the customer wrote at 30 min
    "backlog_age_under_1h": 1,  # t2, open since 30 min
}


def _at(minutes: float) -> Any:
    return T0 + timedelta(minutes=minutes)


def _ev(data: EventData) -> CloudEvent[Any]:
    return new_event(data, tenant_id=TENANT, source="test")


def _case(ticket: str, opened: float, *, order: str | None) -> list[CloudEvent[Any]]:
    common = {"ticket_id": ticket, "customer_id": "c1", "channel": Channel.EMAIL}
    classified = TicketClassified(
        **common,
        occurred_at=_at(opened + 1),
        category=Category.BILLING,
        sentiment=Sentiment.NEUTRAL,
        priority=Priority.NORMAL,
    )
    return [_ev(TicketOpened(**common, occurred_at=_at(opened), order_id=order)), _ev(classified)]


def _events() -> list[CloudEvent[Any]]:
    alert = {
        "notification_id": "n1",
        "customer_id": "c1",
        "order_id": "o1",
        "shipment_id": "s1",
        "episode": 1,
        "delay_reason": "stalled",
        "reason": "allowed",
        "channel": Channel.SMS,
    }
    resolved = TicketResolved(ticket_id="t1", customer_id="c1", occurred_at=_at(10))
    return [
        *_case("t1", 0, order="o1"),
        _ev(resolved),
        *_case("t2", 30, order=None),
        _ev(AgentPresenceChanged(agent_id="ola", presence="online", occurred_at=_at(0))),
        _ev(AgentPresenceChanged(agent_id="ola", presence="away", occurred_at=_at(30))),
        call("completed", "k1", minutes=20, agent="ola", talk_ms=600_000),
        _ev(NotificationScheduled(**alert, occurred_at=_at(20), not_before=_at(20))),
        _ev(NotificationSent(**alert, provider="sms", occurred_at=_at(21))),
        _ev(NotificationDelivered(**alert, occurred_at=_at(25))),
    ]


async def _publish(stack: Stack, events: list[CloudEvent[Any]]) -> None:
    # a key per event: the customer's events spread over partitions consumed concurrently
    await stack.bus.publish(
        [
            OutgoingRecord(stack.topics[e.data.topic], partition_key(TENANT, e.id), encode(e))
            for e in events
        ]
    )


async def _kpis(stack: Stack) -> dict[str, Any]:
    r = await stack.api.get("/v1/kpis", kpi=KPIS, **RANGE)
    assert r.status_code == 200, r.text
    return {k: v["value"] for k, v in r.json()["rows"][0]["kpis"].items()}


async def _until_expected(stack: Stack) -> None:
    for _ in range(1200):  # a loaded shared broker may take a while to create the topics
        if await _kpis(stack) == EXPECTED:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached: {await _kpis(stack)}")


async def test_derived_kpis_are_exact_on_postgres_and_a_replay_changes_nothing(
    stack: Stack,
) -> None:
    events = _events()
    await _publish(stack, events)
    await _until_expected(stack)
    r = await stack.api.get("/v1/trends/categories", interval="1h", **RANGE)
    assert r.json()["rows"][0]["categories"]["billing"]["count"] == 2
    await _publish(stack, events)  # same ids: the inbox drops them all
    await asyncio.sleep(3)
    assert await _kpis(stack) == EXPECTED
