"""Customer merges re-key derived KPIs: FCR and proactive-alert figures follow who the customer is
(crm's `customer.merged` / `.unmerged`), in any arrival order, and an undo separates them again."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from analytics.adapters import orm, repository
from analytics.bootstrap import AnalyticsService
from analytics.domain.components import Piece
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Channel
from sbcontracts.events.crm import (
    CustomerCreated,
    CustomerMerged,
    CustomerUnmerged,
    Provenance,
    ProvenanceKind,
)
from sbcontracts.events.notifier import (
    NotificationDelivered,
    NotificationScheduled,
    NotificationSent,
)
from sbcontracts.events.routing import (
    Category,
    Priority,
    Sentiment,
    TicketClassified,
    TicketOpened,
    TicketResolved,
)
from sbcontracts.topics import CUSTOMERS
from sbkit.bus.local import LocalBus
from tests.unit.analytics.conftest import T0, TENANT, Api, deliver
from tests.unit.analytics.test_consumers import _dlq, _inbox_has, _record, counter, running, until

__all__ = ["running"]  # the fixture, re-used

WHO = Provenance(kind=ProvenanceKind.API, ref="agent-1")
RANGE = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()}


def _ev(data: EventData) -> CloudEvent[Any]:
    return new_event(data, tenant_id=TENANT, source="test")


def _at(minutes: float) -> Any:
    return T0 + timedelta(minutes=minutes)


def merged(merge_id: str, merged_id: str, into: str) -> CloudEvent[Any]:
    """crm merged `merged_id` into `into`."""
    data = CustomerMerged(
        merge_id=merge_id,
        customer_id=into,
        survivor_id=into,
        merged_id=merged_id,
        provenance=WHO,
        merged_at=_at(60),
    )
    return _ev(data)


def unmerged(merge_id: str, restored: str, survivor: str) -> CloudEvent[Any]:
    """crm undid a merge."""
    data = CustomerUnmerged(
        merge_id=merge_id,
        customer_id=survivor,
        survivor_id=survivor,
        restored_id=restored,
        provenance=WHO,
        unmerged_at=_at(90),
    )
    return _ev(data)


def case(
    ticket: str, customer: str, opened: float, *, resolved: float | None = None
) -> list[CloudEvent[Any]]:
    """A billing case of `customer` (resolved, when given), naming no order."""
    common = {"ticket_id": ticket, "customer_id": customer, "channel": Channel.EMAIL}
    out = [
        _ev(TicketOpened(**common, occurred_at=_at(opened))),
        _ev(
            TicketClassified(
                **common,
                occurred_at=_at(opened + 1),
                category=Category.BILLING,
                sentiment=Sentiment.NEUTRAL,
                priority=Priority.NORMAL,
            )
        ),
    ]
    if resolved is not None:
        out.append(_ev(TicketResolved(**common, occurred_at=_at(resolved))))
    return out


def alert(customer: str) -> list[CloudEvent[Any]]:
    """A delay alert to `customer` about o1: scheduled at 0, sent at 1, delivered at 25 min."""
    common = {
        "notification_id": "n1",
        "customer_id": customer,
        "order_id": "o1",
        "shipment_id": "s1",
        "episode": 1,
        "delay_reason": "stalled",
        "reason": "allowed",
        "channel": Channel.SMS,
    }
    return [
        _ev(NotificationScheduled(**common, occurred_at=_at(0), not_before=_at(0))),
        _ev(NotificationSent(**common, provider="sms", occurred_at=_at(1))),
        _ev(NotificationDelivered(**common, occurred_at=_at(25))),
    ]


async def feed(api: Api, events: list[CloudEvent[Any]]) -> None:
    """Deliver events to their consumers, in this order."""
    for e in events:
        await deliver(api.service, e)


async def kpis(api: Api, names: str) -> dict[str, Any]:
    """The tenant's KPIs over the two hours from T0."""
    r = await api.get("/v1/kpis", kpi=names, **RANGE)
    assert r.status_code == 200, r.text
    return {k: v["value"] for k, v in r.json()["rows"][0]["kpis"].items()}


# A (email) resolves a billing case at 10 min; B (a phone crm later links to A) opens one at 30.
EMAIL_THEN_PHONE = [*case("t1", "A", 0, resolved=10), *case("t2", "B", 30)]


@pytest.mark.parametrize("merge_at", [0, 3, len(EMAIL_THEN_PHONE)])
async def test_fcr_counts_a_repeat_across_a_merge_and_not_after_its_undo(
    api: Api, merge_at: int
) -> None:
    """The merge before A's events (they count for B), between, or after every case event."""
    await feed(api, EMAIL_THEN_PHONE[:merge_at])
    await feed(api, [merged("m1", "A", into="B"), *EMAIL_THEN_PHONE[merge_at:]])
    assert await kpis(api, "fcr") == {"fcr": 0.0}  # B came back on billing 20 min later
    await feed(api, [unmerged("m1", restored="A", survivor="B")])
    assert await kpis(api, "fcr") == {"fcr": 1.0}  # two people again: no repeat


async def test_two_strangers_are_no_repeat(api: Api) -> None:
    await feed(api, EMAIL_THEN_PHONE)
    assert await kpis(api, "fcr") == {"fcr": 1.0}


async def test_a_chain_of_merges_reaches_the_last_survivor(api: Api) -> None:
    """A into B, then B into C: A's resolution and C's new case are one person's."""
    events = [*case("t1", "A", 0, resolved=10), *case("t2", "C", 30)]
    await feed(api, [merged("m2", "B", into="C"), *events, merged("m1", "A", into="B")])
    assert await kpis(api, "fcr") == {"fcr": 0.0}
    await feed(api, [unmerged("m2", restored="B", survivor="C")])
    assert await kpis(api, "fcr") == {"fcr": 1.0}  # A is B again, not C
    await feed(api, [merged("m3", "B", into="C")])
    assert await kpis(api, "fcr") == {"fcr": 0.0}


async def test_an_undo_ahead_of_its_merge_means_the_merge_never_holds(api: Api) -> None:
    await feed(api, [unmerged("m1", restored="A", survivor="B"), *EMAIL_THEN_PHONE])
    await feed(api, [merged("m1", "A", into="B")])
    assert await kpis(api, "fcr") == {"fcr": 1.0}


ALERT_KPIS = "alerts_sent,alerts_ahead_of_contact,alerts_behind_contact"


@pytest.mark.parametrize("merge_at", [0, 2, 5])
async def test_alert_is_behind_a_contact_the_survivor_made_first(api: Api, merge_at: int) -> None:
    """An alert to A delivered at 25 min; B (the same person) wrote at 10 min."""
    events = [*alert("A"), *case("t2", "B", 10)]
    await feed(api, events[:merge_at])
    await feed(api, [merged("m1", "A", into="B"), *events[merge_at:]])
    want = {"alerts_sent": 1, "alerts_ahead_of_contact": 0, "alerts_behind_contact": 1}
    assert await kpis(api, ALERT_KPIS) == want
    await feed(api, [unmerged("m1", restored="A", survivor="B")])
    want = {"alerts_sent": 1, "alerts_ahead_of_contact": 1, "alerts_behind_contact": 0}
    assert await kpis(api, ALERT_KPIS) == want


async def test_alert_to_the_survivor_is_ahead_of_the_merged_customers_later_contact(
    api: Api,
) -> None:
    """An alert to B delivered at 25 min; A (merged into B) writes at 40 min: ahead, 15 min lead."""
    await feed(api, [*alert("B"), *case("t3", "A", 40), merged("m1", "A", into="B")])
    got = await kpis(api, f"{ALERT_KPIS},alert_lead_time")
    assert got == {
        "alerts_sent": 1,
        "alerts_ahead_of_contact": 1,
        "alerts_behind_contact": 0,
        "alert_lead_time": 15 * 60.0,
    }
    await feed(api, [unmerged("m1", restored="A", survivor="B")])
    got = await kpis(api, f"{ALERT_KPIS},alert_lead_time")
    assert got["alert_lead_time"] is None  # B never got in touch


async def _repeats(service: AnalyticsService) -> int:
    """Resolutions followed by a repeat contact within 30 days (every `fcr_rep_h` bin)."""
    async with service.runtime.uow() as uow:
        sums = await repository.sums(
            uow.session, tenant=TENANT, pieces=[Piece(None, T0 + timedelta(days=1), "15m")]
        )
    return sum(sum(t.bins("fcr_rep_h").values()) for t in sums.values())


async def _settled(service: AnalyticsService, bus: LocalBus, events: list[CloudEvent[Any]]) -> None:
    for e in events:
        await bus.publish([_record(e.data.topic, e)])
    await until(lambda: _inbox_has(service, len({e.id for e in events})))


async def test_merge_delivered_twice_or_sent_again_moves_the_cases_once(
    running: tuple[AnalyticsService, LocalBus],
) -> None:
    service, bus = running
    m = merged("m1", "A", into="B")
    await _settled(service, bus, [*EMAIL_THEN_PHONE, m])
    await bus.publish([_record(CUSTOMERS.name, m), _record(CUSTOMERS.name, merged("m1", "A", "B"))])
    await until(lambda: _inbox_has(service, len(EMAIL_THEN_PHONE) + 2))
    assert (await counter(service, "fcr_n"), await _repeats(service)) == (1, 1)
    undo = unmerged("m1", restored="A", survivor="B")
    await bus.publish([_record(CUSTOMERS.name, undo), _record(CUSTOMERS.name, undo)])
    await until(lambda: _inbox_has(service, len(EMAIL_THEN_PHONE) + 3))
    assert (await counter(service, "fcr_n"), await _repeats(service)) == (1, 0)


async def test_poison_on_the_customers_topic_goes_to_the_dlq_and_changes_nothing(
    running: tuple[AnalyticsService, LocalBus],
) -> None:
    service, bus = running
    await _settled(service, bus, EMAIL_THEN_PHONE)
    bad = merged("m1", "A", into="B").model_dump(mode="json")
    bad["data"]["survivor_id"] = ""
    await bus.publish([_record(CUSTOMERS.name, json.dumps(bad).encode())])
    await bus.publish([_record(CUSTOMERS.name, b"{not json")])
    await until(lambda: _dlq(bus, CUSTOMERS.name, 2))
    created = CustomerCreated(customer_id="A", provenance=WHO, created_at=T0)
    await bus.publish([_record(CUSTOMERS.name, _ev(created))])  # acknowledged, ignored
    await until(lambda: _inbox_has(service, len(EMAIL_THEN_PHONE) + 1))
    assert await _repeats(service) == 0
    async with service.runtime.uow() as uow:
        assert await uow.session.scalar(select(func.count()).select_from(orm.merges)) == 0
    await bus.publish([_record(CUSTOMERS.name, merged("m1", "A", into="B"))])
    await until(lambda: _inbox_has(service, len(EMAIL_THEN_PHONE) + 2))
    assert await _repeats(service) == 1


async def test_a_case_rekeyed_before_its_opening_arrived_goes_back_with_the_undo(api: Api) -> None:
    """routing re-keyed A's case to B after the merge: its classification and resolution came
    under B before its opening (A's) arrived; the undo still gives the case back to A."""
    opened, *rest = case("t1", "A", 0, resolved=10)
    rekeyed = [
        e.model_copy(update={"data": e.data.model_copy(update={"customer_id": "B"})}) for e in rest
    ]
    await feed(api, [merged("m1", "A", into="B"), *rekeyed, *case("t2", "B", 30), opened])
    assert await kpis(api, "fcr") == {"fcr": 0.0}
    await feed(api, [unmerged("m1", restored="A", survivor="B")])
    assert await kpis(api, "fcr") == {"fcr": 1.0}
