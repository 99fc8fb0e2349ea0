"""The REST API: notifications with reasons, policies, templates with preview; scopes; bad input 4xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.bootstrap import NotifierService, bootstrap
from sbcontracts.events.routing import TicketOpened
from sbkit.auth import Keyring, mint
from sbkit.bus.local import LocalBus
from tests.fakes.served import served
from tests.unit.notifier.conftest import (
    START,
    Clock,
    FakeSender,
    customer,
    deliver,
    event_of,
    order,
    scan,
    settings_for,
)

RW = ["notifications:read", "notifications:write"]


class Api:
    """A client of the notifier app with tokens per tenant and scopes."""

    def __init__(self, client: httpx.AsyncClient, ring: Keyring, service: NotifierService) -> None:
        self.client, self.ring, self.service = client, ring, service

    async def call(
        self, method: str, url: str, *, tenant: str = "acme", scopes: list[str] = RW, **kw: Any
    ) -> httpx.Response:
        _, token = mint(self.ring, tenant_id=tenant, scopes=scopes, ttl_s=600)
        return await self.client.request(
            method, url, headers={"authorization": f"Bearer {token}"}, **kw
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    service = bootstrap(
        settings_for(tmp_path),
        bus=LocalBus(":memory:", poll_interval_s=0.01),
        clock=Clock(),
        sender=FakeSender(),
        timers=False,
    )
    async with served(service, tmp_path / "keys", "http://notifier") as (client, ring):
        yield Api(client, ring, service)


async def test_suppressed_notification_is_listed_with_its_reason(api: Api) -> None:
    for e in customer():
        await deliver(api.service, e)
    await deliver(api.service, order())
    opened = TicketOpened(ticket_id="t-1", customer_id="c-1", order_id="o-1", occurred_at=START)
    await deliver(api.service, event_of(opened))
    await deliver(api.service, scan(START, carrier_code="DY"))
    found = (await api.call("GET", "/v1/notifications?order_id=o-1&status=suppressed")).json()
    assert [(n["status"], n["reason"]) for n in found] == [("suppressed", "open_case")]
    one = await api.call("GET", f"/v1/notifications/{found[0]['id']}")
    assert one.json()["note"].startswith("Proactive delay alert not sent")
    other = await api.call("GET", f"/v1/notifications/{found[0]['id']}", tenant="globex")
    assert other.status_code == 404
    assert (await api.call("GET", "/v1/notifications", scopes=["kpis:read"])).status_code == 403


async def test_policy_round_trip_and_bad_policy_is_422(api: Api) -> None:
    body = {
        "quiet_start": "22:00",
        "quiet_end": "07:30",
        "cap": 2,
        "fallback_order": ["sms", "email"],
    }
    assert (await api.call("PUT", "/v1/policies", json=body)).status_code == 200
    assert (await api.call("GET", "/v1/policies")).json() == body
    for bad in ({"quiet_start": "25:00"}, {"fallback_order": ["pigeon"]}, {"cap": 0}, {"x": 1}):
        r = await api.call("PUT", "/v1/policies", json=bad)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert (
        await api.call("PUT", "/v1/policies", json=body, scopes=["notifications:read"])
    ).status_code == 403


async def test_templates_crud_and_preview(api: Api) -> None:
    tpl = {
        "language": "pl",
        "subject": "Opóźnienie $order_id",
        "body": "Nowy termin: $estimate, $tracking_url",
    }
    put = await api.call("PUT", "/v1/templates/pl-delay", json=tpl)
    assert put.status_code == 200, put.text
    assert [t["id"] for t in (await api.call("GET", "/v1/templates")).json()] == ["pl-delay"]
    preview = await api.call(
        "POST",
        "/v1/templates/pl-delay/preview",
        json={"order_id": "o-9", "estimate": "2026-11-25T10:00:00Z"},
    )
    assert preview.json()["subject"] == "Opóźnienie o-9" and "2026-11-25" in preview.json()["body"]
    for estimate in ("2026-11-25T10:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T00:00:00Z"):
        naive_or_absurd = await api.call(
            "POST", "/v1/templates/pl-delay/preview", json={"estimate": estimate}
        )
        assert naive_or_absurd.status_code == 422, estimate
    assert (await api.call("DELETE", "/v1/templates/pl-delay")).status_code == 204
    assert (await api.call("GET", "/v1/templates/pl-delay")).status_code == 404
    assert (await api.call("POST", "/v1/templates/nope/preview", json={})).status_code == 404
    bad = await api.call(
        "PUT", "/v1/templates/x", json={"language": "polish", "subject": "", "body": ""}
    )
    assert bad.status_code == 422


async def test_bad_filters_are_422_not_500(api: Api) -> None:
    assert (await api.call("GET", "/v1/notifications?status=lost")).status_code == 422
    assert (await api.call("GET", "/v1/notifications?limit=0")).status_code == 422
    assert (await api.call("GET", "/v1/notifications/" + "x" * 65)).status_code == 422
