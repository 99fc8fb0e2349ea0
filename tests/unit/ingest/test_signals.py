"""Calls, orders, shipments and surveys: validated, normalised and accepted once by natural id."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sbcontracts.topics import CALLS, COMMERCE, SURVEYS
from tests.unit.ingest.conftest import Harness

ORDER: dict[str, Any] = {
    "order_id": "PL-1001",
    "customer_email": "Jan.Nowak@Example.PL",
    "customer_phone": "600 100 200",
    "region": "PL",
    "customer_language": "pl",
    "placed_at": "2024-11-20T10:00:00+01:00",
    "currency": "PLN",
    "total_minor": 19999,
    "items": [{"sku": "SKU-1", "name": "Czajnik", "quantity": 1, "unit_price_minor": 19999}],
    "promised_from": "2024-11-22",
    "promised_to": "2024-11-23",
    "shipments": [{"shipment_id": "S-1", "carrier": "dhl", "tracking_number": "JD0001"}],
}


async def test_order_placed_once_then_updated_on_change(harness: Harness) -> None:
    h = harness.token()
    first = await harness.client.post("/v1/orders", json=ORDER, headers=h)
    again = await harness.client.post("/v1/orders", json=ORDER, headers=h)
    changed = await harness.client.post("/v1/orders", json=ORDER | {"status": "paid"}, headers=h)
    assert (first.status_code, again.status_code, changed.status_code) == (202, 200, 202)
    events = await harness.events(COMMERCE.name)
    assert [e["type"] for e in events] == [
        "com.switchboard.order.placed",
        "com.switchboard.order.updated",
    ]
    data = events[0]["data"]
    assert data["customer_email"] == "jan.nowak@example.pl"
    assert data["customer_phone"] == "+48600100200"


@pytest.mark.parametrize(
    ("carrier", "code", "status", "delay", "reason"),
    [
        ("dhl", "WX", "in_transit", True, "weather"),
        ("ups", "DY", "in_transit", True, "carrier"),
        ("fedex", "DL", "delivered", False, None),
        ("x12", "AW", "in_transit", True, "dispatch"),
        ("dhl", "WC", "out_for_delivery", False, None),
        ("poczta", "???", "unknown", False, None),
    ],
)
async def test_shipment_codes_map_to_status_model(
    harness: Harness, carrier: str, code: str, status: str, delay: bool, reason: str | None
) -> None:
    body = {
        "shipment_id": "S-1",
        "order_id": "PL-1001",
        "carrier": carrier,
        "tracking_number": "T1",
        "carrier_code": code,
        "occurred_at": "2024-11-21T06:00:00+01:00",
    }
    r = await harness.client.post("/v1/shipments/events", json=body, headers=harness.token())
    assert r.status_code == 202, r.text
    again = await harness.client.post("/v1/shipments/events", json=body, headers=harness.token())
    assert again.status_code == 200
    events = await harness.events(COMMERCE.name)
    assert len(events) == 1
    data = events[0]["data"]
    assert (data["status"], data["is_delay"], data.get("reason")) == (status, delay, reason)


async def test_call_events_once_and_conflicting_reuse_refused(harness: Harness) -> None:
    body = {
        "call_id": "call-77",
        "event": "answered",
        "occurred_at": "2024-11-21T09:00:30+00:00",
        "queue": "support-pl",
        "agent_id": "agent-3",
        "wait_ms": 30000,
        "caller": {"kind": "phone", "value": "+7 495 123-45-67"},
    }
    answers = await asyncio.gather(
        *[
            harness.client.post("/v1/calls/events", json=body, headers=harness.token())
            for _ in range(4)
        ]
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 202]
    conflict = await harness.client.post(
        "/v1/calls/events", json=body | {"wait_ms": 1}, headers=harness.token()
    )
    assert conflict.status_code == 409
    events = await harness.events(CALLS.name)
    assert len(events) == 1 and events[0]["data"]["caller"]["value"] == "+74951234567"


@pytest.mark.parametrize(
    ("kind", "score", "ok"),
    [
        ("csat", 5, True),
        ("csat", 0, False),
        ("nps", 0, True),
        ("nps", 11, False),
        ("ces", 7, True),
        ("ces", 8, False),
    ],
)
async def test_survey_scores_validated_per_kind(
    harness: Harness, kind: str, score: int, ok: bool
) -> None:
    body = {
        "response_id": f"r-{kind}-{score}",
        "kind": kind,
        "score": score,
        "customer_id": "c-1",
        "responded_at": "2024-11-21T10:00:00+00:00",
    }
    r = await harness.client.post("/v1/surveys/responses", json=body, headers=harness.token())
    assert r.status_code == (202 if ok else 422)
    assert len(await harness.events(SURVEYS.name)) == (1 if ok else 0)


async def test_signals_need_their_scopes(harness: Harness) -> None:
    token = harness.token(scopes=("messages:write",))
    r = await harness.client.post("/v1/orders", json=ORDER, headers=token)
    assert r.status_code == 403
    assert await harness.events(COMMERCE.name) == []


@pytest.mark.parametrize(
    "placed_at",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "1969-12-31T23:59:59Z",
        "9999-12-31T23:59:59Z",
    ],
)
async def test_datetimes_outside_1970_to_9000_are_refused_before_anything_is_published(
    harness: Harness, placed_at: str
) -> None:
    """Accepted, such an order overflowed in the notifier's arithmetic and was dead-lettered."""
    r = await harness.client.post(
        "/v1/orders", json=ORDER | {"placed_at": placed_at}, headers=harness.token()
    )
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "1970" in r.text
    assert await harness.events(COMMERCE.name) == []
