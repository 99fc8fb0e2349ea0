"""Tickets and notifications: open cases and the contact reason on the card, milestones on the timeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crm.adapters import orm
from sbcontracts.envelope import EventData, new_event
from sbcontracts.events.notifier import NotificationSent
from sbcontracts.events.routing import (
    Category,
    Priority,
    Sentiment,
    TicketClassified,
    TicketOpened,
    TicketResolved,
)
from tests.unit.crm.conftest import T0, TENANT, Api, count, deliver, message


def _event(data: EventData) -> Any:
    return new_event(data, tenant_id=TENANT, source="routing")


def opened(cid: str, ticket: str = "t1") -> Any:
    """A case opened for a customer."""
    return _event(
        TicketOpened(
            ticket_id=ticket,
            customer_id=cid,
            subject="Where is my parcel?",
            occurred_at=T0 + timedelta(minutes=1),
        )
    )


def classified(cid: str, ticket: str = "t1") -> Any:
    """The case classified as a delivery delay."""
    return _event(
        TicketClassified(
            ticket_id=ticket,
            customer_id=cid,
            category=Category.DELIVERY_DELAY,
            sentiment=Sentiment.NEGATIVE,
            priority=Priority.HIGH,
            occurred_at=T0 + timedelta(minutes=2),
        )
    )


async def _customer(api: Api, email: str = "anna@example.pl") -> str:
    await deliver(api.service, message(email))
    found = await api.call("GET", "/v1/customers", params={"email": email})
    return str(found.json()[0]["id"])


async def _card(api: Api, cid: str) -> dict[str, Any]:
    return dict((await api.call("GET", f"/v1/customers/{cid}")).json())


async def test_open_case_and_its_category_show_on_the_card(api: Api) -> None:
    cid = await _customer(api)
    await deliver(api.service, opened(cid))
    await deliver(api.service, classified(cid))
    card = await _card(api, cid)
    assert [(t["ticket_id"], t["status"], t["category"]) for t in card["open_tickets"]] == [
        ("t1", "open", "delivery_delay")
    ]
    assert card["last_contact"]["reason"] == "delivery_delay"
    resolved = TicketResolved(ticket_id="t1", customer_id=cid, occurred_at=T0 + timedelta(hours=1))
    await deliver(api.service, _event(resolved))
    assert (await _card(api, cid))["open_tickets"] == []
    assert await count(api.service, orm.timeline, kind="ticket") == 2


async def test_redelivered_ticket_event_adds_one_timeline_entry(api: Api) -> None:
    cid = await _customer(api)
    event = opened(cid)
    await deliver(api.service, event)
    await deliver(api.service, event)
    assert await count(api.service, orm.timeline, kind="ticket") == 1


async def test_ticket_of_an_unknown_customer_is_dropped(api: Api) -> None:
    await deliver(api.service, opened("no-such-customer"))
    assert await count(api.service, orm.tickets) == 0


async def test_ticket_of_a_merged_away_id_shows_on_the_survivor(api: Api) -> None:
    a, b = await _customer(api, "a@example.pl"), await _customer(api, "b@example.pl")
    await deliver(api.service, opened(b))
    await api.call("POST", f"/v1/customers/{a}/merge", json={"other_id": b})
    assert [t["ticket_id"] for t in (await _card(api, a))["open_tickets"]] == ["t1"]


async def test_notification_lands_on_the_timeline(api: Api) -> None:
    cid = await _customer(api)
    sent = NotificationSent(
        notification_id="n1",
        customer_id=cid,
        shipment_id="s1",
        episode=1,
        delay_reason="carrier_delay",
        reason="allowed",
        occurred_at=T0 + timedelta(hours=2),
        provider="twilio",
    )
    await deliver(api.service, new_event(sent, tenant_id=TENANT, source="notifier"))
    entries = (await api.call("GET", f"/v1/customers/{cid}/timeline")).json()["entries"]
    assert entries[0]["kind"] == "notification" and "carrier_delay" in entries[0]["summary"]
