"""Consumers of derived KPIs (notifications, agent presence, re-classified cases) on the bus:
a duplicate changes nothing, poison goes to the DLQ and the consumer moves on."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from analytics.bootstrap import AnalyticsService
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Channel
from sbcontracts.events.notifier import NotificationScheduled, NotificationSent
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    Category,
    Priority,
    Sentiment,
    TicketClassified,
)
from sbcontracts.topics import AGENTS, NOTIFICATIONS, TICKETS
from sbkit.bus.local import LocalBus
from tests.unit.analytics.conftest import T0, TENANT
from tests.unit.analytics.test_consumers import _dlq, _inbox_has, _record, counter, running, until

__all__ = ["running"]  # the fixture, re-used
Running = tuple[AnalyticsService, LocalBus]
ALERT = {
    "notification_id": "n1",
    "customer_id": "c1",
    "order_id": "o1",
    "shipment_id": "s1",
    "episode": 1,
    "delay_reason": "stalled",
    "reason": "allowed",
    "channel": Channel.SMS,
}


def _event(data: EventData) -> CloudEvent[Any]:
    return new_event(data, tenant_id=TENANT, source="test")


def _presence(state: str, minutes: float) -> CloudEvent[Any]:
    at = T0 + timedelta(minutes=minutes)
    return _event(AgentPresenceChanged(agent_id="ola", presence=state, occurred_at=at))


def _classified(category: Category, minutes: float) -> CloudEvent[Any]:
    data = TicketClassified(
        ticket_id="t1",
        customer_id="c1",
        occurred_at=T0 + timedelta(minutes=minutes),
        category=category,
        sentiment=Sentiment.NEGATIVE,
        priority=Priority.NORMAL,
    )
    return _event(data)


async def test_alert_sent_twice_or_redelivered_counts_once(running: Running) -> None:
    service, bus = running
    scheduled = _event(NotificationScheduled(**ALERT, occurred_at=T0, not_before=T0))
    sent = _event(NotificationSent(**ALERT, provider="sms", occurred_at=T0))
    retry = _event(NotificationSent(**ALERT, provider="sms", attempt=2, occurred_at=T0))
    await bus.publish([_record(NOTIFICATIONS.name, e) for e in (scheduled, sent, sent, retry)])
    await until(lambda: _inbox_has(service, 3))
    assert await counter(service, "alert_sent") == 1


async def test_presence_redelivered_counts_online_time_once(running: Running) -> None:
    service, bus = running
    online, away = _presence("online", 0), _presence("away", 30)
    await bus.publish([_record(AGENTS.name, e) for e in (online, away, online, away)])
    await until(lambda: _inbox_has(service, 2))
    assert await counter(service, "online_ms") == 30 * 60_000


async def test_presence_arriving_out_of_order_closes_the_right_span(running: Running) -> None:
    service, bus = running
    events = [_presence("offline", 60), _presence("online", 0), _presence("away", 20)]
    for e in events:  # the offline first: online 0-20, away 20-60
        await bus.publish([_record(AGENTS.name, e)])
    await until(lambda: _inbox_has(service, 3))
    assert await counter(service, "online_ms") == 20 * 60_000


async def test_reclassified_case_moves_between_reasons(running: Running) -> None:
    service, bus = running
    first, second = _classified(Category.BILLING, 1), _classified(Category.RETURNS, 5)
    await bus.publish([_record(TICKETS.name, e) for e in (second, first, second)])
    await until(lambda: _inbox_has(service, 2))
    assert await counter(service, "classified") == 1
    assert await counter(service, "cat:returns") == 1
    assert await counter(service, "cat:billing") == 0


async def test_poison_notification_and_presence_go_to_the_dlq(running: Running) -> None:
    service, bus = running
    lunch = _presence("online", 0).model_dump(mode="json")
    lunch["data"]["presence"] = "lunch"
    await bus.publish([_record(AGENTS.name, json.dumps(lunch).encode())])
    await bus.publish([_record(NOTIFICATIONS.name, b"{not json")])
    await until(lambda: _dlq(bus, AGENTS.name, 1))
    await until(lambda: _dlq(bus, NOTIFICATIONS.name, 1))
    await bus.publish([_record(AGENTS.name, _presence("online", 0))])
    await bus.publish([_record(AGENTS.name, _presence("offline", 15))])
    await until(lambda: _inbox_has(service, 2))
    assert await counter(service, "online_ms") == 15 * 60_000
