"""Tenant isolation (issue 10): every route of every service, called with another tenant's token.

Tenant A plants objects (with personal values) through each service's own API or consumers;
tenant B, holding a token with every scope (`*`), then calls every route of the app with A's
ids in the path. Routes addressing an object answer 403/404; collections answer 200 with none
of A's data; tenant-scoped creates make B's own objects. No answer of B contains any of A's
ids or personal values (values B itself sent in that request are not counted: a 404 may echo
the id asked for). Webhooks are authenticated by provider secrets: B's secret on A's path is
refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts

from tests.integration.security.apps import SERVICES, Running, running

A, B = "acme", "globex"
A_NAME, A_EMAIL, A_PHONE = "Zofia Sekretna-Wiśniewska", "zofia.sekretna@tajne.pl", "+48601999888"
B_NAME, B_EMAIL, B_PHONE = "Bob Other", "bob@globex.example", "+48602111222"
TG_A, TG_B = "tg-secret-of-acme", "tg-secret-of-globex"
WA_A, WA_B = "wa-app-secret-acme", "wa-app-secret-globex"


@dataclass
class Plant:
    """What tenant A planted in one service: path ids, values that must never leak to B."""

    ids: dict[str, str] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)
    lists: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # extra list queries
    check_a: list[tuple[str, str]] = field(default_factory=list)  # (url, value) A still sees


Body = Callable[[Plant], Any]
BODIES: dict[tuple[str, str], Body] = {
    # ingest
    ("POST", "/v1/messages"): lambda p: {
        "external_id": "b-chat-1",
        "channel": "webchat",
        "sender": {"kind": "email", "value": B_EMAIL},
        "display_name": B_NAME,
        "text": "hello from globex",
    },
    ("POST", "/v1/channels"): lambda p: {
        "kind": "telegram",
        "name": "b-tg",
        "settings": {},
        "secrets": {"secret_token": "tg-b-2"},
    },
    ("PATCH", "/v1/channels/{channel_id}"): lambda p: {"name": "hijacked"},
    ("POST", "/v1/calls/events"): lambda p: {
        "call_id": "b-call-1",
        "event": "answered",
        "occurred_at": "2026-11-21T09:00:30+00:00",
        "queue": "b-queue",
        "wait_ms": 1000,
    },
    ("POST", "/v1/surveys/responses"): lambda p: {
        "response_id": "b-r-1",
        "kind": "nps",
        "score": 9,
        "customer_id": "b-cust-1",
        "responded_at": "2026-11-21T10:00:00+00:00",
    },
    ("POST", "/v1/orders"): lambda p: {
        "order_id": "B-ORDER-1",
        "customer_email": B_EMAIL,
        "placed_at": "2026-11-20T10:00:00+01:00",
    },
    ("POST", "/v1/shipments/events"): lambda p: {
        "shipment_id": "B-S-1",
        "order_id": "B-ORDER-1",
        "carrier": "dhl",
        "tracking_number": "BT1",
        "carrier_code": "WC",
        "occurred_at": "2026-11-21T06:00:00+01:00",
    },
    # crm
    ("POST", "/v1/customers"): lambda p: {"email": B_EMAIL, "phone": B_PHONE, "name": B_NAME},
    ("PATCH", "/v1/customers/{customer_id}"): lambda p: {"name": "Hijacked"},
    ("POST", "/v1/customers/{customer_id}/links"): lambda p: {"email": "b-link@globex.example"},
    ("POST", "/v1/customers/{customer_id}/merge"): lambda p: {"other_id": p.ids["other_id"]},
    # routing
    ("PUT", "/v1/queues/{queue_id}"): lambda p: {"name": "hijacked"},
    ("POST", "/v1/queues/{queue_id}"): lambda p: {"name": "b-queue"},
    ("POST", "/v1/agents/{agent_id}"): lambda p: {"name": "b-agent", "capacity": 10},
    ("PUT", "/v1/agents/{agent_id}"): lambda p: {"name": "hijacked", "capacity": 10},
    ("PUT", "/v1/agents/{agent_id}/presence"): lambda p: {"presence": "online"},
    ("PUT", "/v1/rules"): lambda p: {"rules": [{"category": "delivery_delay", "pattern": "bpkg"}]},
    ("POST", "/v1/tickets/{ticket_id}/replies"): lambda p: {"agent_id": "b-1", "text": "hi"},
    ("POST", "/v1/tickets/{ticket_id}/notes"): lambda p: {"agent_id": "b-1", "text": "hi"},
    ("POST", "/v1/tickets/{ticket_id}/assign"): lambda p: {"agent_id": p.ids["agent_id"]},
    ("POST", "/v1/tickets/{ticket_id}/transfer"): lambda p: {"queue_id": p.ids["queue_id"]},
    ("POST", "/v1/tickets/{ticket_id}/status"): lambda p: {"status": "pending"},
    # analytics
    ("PUT", "/v1/kpis/thresholds"): lambda p: {
        "thresholds": {"asa": {"green_at": 1, "red_at": 2, "direction": "lower_is_better"}}
    },
    # notifier
    ("PUT", "/v1/policies"): lambda p: {"cap": 3},
    ("PUT", "/v1/templates/{template_id}"): lambda p: {
        "language": "en",
        "subject": "b subject",
        "body": "b body {order_id}",
    },
    ("POST", "/v1/templates/{template_id}/preview"): lambda p: {},
}

# Routes whose id is chosen by the caller: B's call creates B's own object under that id.
CREATES_OWN = {
    ("POST", "/v1/queues/{queue_id}"),
    ("POST", "/v1/agents/{agent_id}"),
    ("PUT", "/v1/templates/{template_id}"),
}
WINDOW = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"}
QUERY = {
    "/v1/kpis/stream": {"max_events": "1"},
    "/v1/kpis": WINDOW,
    "/v1/trends/categories": WINDOW,
}


async def plant_ingest(r: Running) -> Plant:
    h = r.auth(A)
    p = Plant(secrets={A_NAME, A_EMAIL.lower(), A_PHONE, TG_A, WA_A})
    body = {
        "external_id": "a-chat-1",
        "channel": "webchat",
        "sender": {"kind": "email", "value": A_EMAIL},
        "display_name": A_NAME,
        "text": "Gdzie moja paczka?",
    }
    res = await r.client.post("/v1/messages", json=body, headers=h)
    assert res.status_code == 201, res.text
    p.ids["message_id"] = res.json()["message_id"]
    for kind, secrets in (
        ("telegram", {"secret_token": TG_A}),
        ("whatsapp", {"app_secret": WA_A, "verify_token": "verify-a"}),
    ):
        res = await r.client.post(
            "/v1/channels",
            json={"kind": kind, "name": f"a-{kind}", "settings": {}, "secrets": secrets},
            headers=h,
        )
        assert res.status_code == 201, res.text
        p.ids[f"{kind}_channel"] = res.json()["id"]
    p.ids["channel_id"] = p.ids["telegram_channel"]
    p.ids["tenant"] = A
    order = {
        "order_id": "A-ORDER-77",
        "customer_email": A_EMAIL,
        "customer_phone": A_PHONE,
        "customer_name": A_NAME,
        "placed_at": "2026-11-20T10:00:00+01:00",
        "shipments": [{"shipment_id": "A-SHIP-77", "carrier": "dhl", "tracking_number": "AJD77"}],
    }
    signals = [
        ("/v1/orders", order),
        (
            "/v1/calls/events",
            {
                "call_id": "a-call-77",
                "event": "answered",
                "occurred_at": "2026-11-21T09:00:30+00:00",
                "queue": "a-queue-77",
                "wait_ms": 1000,
                "caller": {"kind": "phone", "value": A_PHONE},
            },
        ),
        (
            "/v1/surveys/responses",
            {
                "response_id": "a-survey-77",
                "kind": "nps",
                "score": 3,
                "customer_id": "a-cust-77",
                "responded_at": "2026-11-21T10:00:00+00:00",
            },
        ),
    ]
    for url, doc in signals:
        res = await r.client.post(url, json=doc, headers=h)
        assert res.status_code == 202, (url, res.text)
    p.secrets |= {"A-ORDER-77", "A-SHIP-77", "AJD77", "a-call-77", "a-survey-77", "a-cust-77"}
    p.check_a = [(f"/v1/messages/{p.ids['message_id']}", A_EMAIL.lower())]
    p.check_a.append((f"/v1/channels/{p.ids['channel_id']}", "a-telegram"))
    return p


async def plant_crm(r: Running) -> Plant:
    h = r.auth(A)
    p = Plant(secrets={A_NAME, A_EMAIL, A_PHONE, "other.sekret@tajne.pl"})
    res = await r.client.post(
        "/v1/customers", json={"email": A_EMAIL, "phone": A_PHONE, "name": A_NAME}, headers=h
    )
    assert res.status_code == 201, res.text
    p.ids["customer_id"] = res.json()["id"]
    two = []
    for n in (1, 2):
        res = await r.client.post(
            "/v1/customers",
            json={"email": f"m{n}.sekret@tajne.pl", "name": f"Merge {n}"},
            headers=h,
        )
        assert res.status_code == 201, res.text
        two.append(res.json()["id"])
    res = await r.client.post(f"/v1/customers/{two[0]}/merge", json={"other_id": two[1]}, headers=h)
    assert res.status_code == 200, res.text
    p.ids["merge_id"] = res.json()["id"]
    res = await r.client.post("/v1/customers", json={"email": "other.sekret@tajne.pl"}, headers=h)
    p.ids["other_id"] = res.json()["id"]
    p.secrets |= {*two, "m1.sekret@tajne.pl", "m2.sekret@tajne.pl"}
    p.lists = [
        ("/v1/customers", {"email": A_EMAIL}),
        ("/v1/customers", {"phone": A_PHONE}),
        ("/v1/customers", {"q": "Zofia"}),
    ]
    p.check_a = [(f"/v1/customers/{p.ids['customer_id']}", A_NAME)]
    return p


async def plant_routing(r: Running) -> Plant:
    from tests.unit.routing.conftest import attributed, deliver

    h = r.auth(A)
    p = Plant(ids={"queue_id": "a-queue-7q", "agent_id": "a-agent-7g"})
    res = await r.client.post("/v1/queues/a-queue-7q", json={"name": "Kolejka A-tajna"}, headers=h)
    assert res.status_code == 201, res.text
    body = {"name": A_NAME, "capacity": 10}
    res = await r.client.post("/v1/agents/a-agent-7g", json=body, headers=h)
    assert res.status_code == 201, res.text
    rules = {"rules": [{"category": "delivery_delay", "pattern": "tajnapaczka"}]}
    assert (await r.client.put("/v1/rules", json=rules, headers=h)).status_code == 200
    await deliver(r.service, attributed("Gdzie tajnapaczka?", customer="a-cust-7c", sender=A_EMAIL))
    tickets = (await r.client.get("/v1/tickets", headers=h)).json()
    assert len(tickets) == 1, tickets
    p.ids["ticket_id"] = tickets[0]["id"]
    p.secrets = {A_NAME, A_EMAIL, "Kolejka A-tajna", "tajnapaczka", "a-cust-7c"}
    p.lists = [("/v1/tickets", {"customer": "a-cust-7c"}), ("/v1/tickets", {"queue": "a-queue-7q"})]
    p.check_a = [
        (f"/v1/tickets/{p.ids['ticket_id']}", "tajnapaczka"),
        ("/v1/queues/a-queue-7q", "Kolejka A-tajna"),
        ("/v1/agents/a-agent-7g", A_NAME),
    ]
    return p


async def plant_analytics(r: Running) -> Plant:
    from tests.unit.analytics.conftest import call, deliver

    h = r.auth(A)
    body = {
        "thresholds": {"asa": {"green_at": 123.5, "red_at": 987.25, "direction": "lower_is_better"}}
    }
    assert (await r.client.put("/v1/kpis/thresholds", json=body, headers=h)).status_code == 200
    for kind in ("offered", "answered", "completed"):
        await deliver(r.service, call(kind, "a-call-1", queue="a-queue-sekret", wait_ms=1000))
    window = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"}
    p = Plant(secrets={"a-queue-sekret", "987.25"})
    p.lists = [("/v1/kpis", {**window, "group_by": "queue"}), ("/v1/staffing", window)]
    seen = await r.client.get("/v1/kpis", params={**window, "group_by": "queue"}, headers=h)
    assert "a-queue-sekret" in seen.text, seen.text  # A does see its own data
    query = "&".join(f"{k}={v}" for k, v in window.items())
    p.check_a = [(f"/v1/kpis?{query}&group_by=queue", "a-queue-sekret")]
    return p


async def plant_notifier(r: Running) -> Plant:
    from tests.unit.notifier.conftest import START, customer, deliver, order, scan

    h = r.auth(A)
    for e in [*customer("whatsapp"), order()]:
        await deliver(r.service, e)
    await deliver(r.service, scan(START - timedelta(hours=1)))
    r.clock.advance(timedelta(hours=48))
    await r.service.tick()
    await r.service.tick()
    notes = (await r.client.get("/v1/notifications", headers=h)).json()
    assert len(notes) == 1, notes
    tpl = {"language": "pl", "subject": "Temat tajny A", "body": "Treść tajna A {order_id}"}
    assert (await r.client.put("/v1/templates/a-tpl-7", json=tpl, headers=h)).status_code == 200
    assert (await r.client.put("/v1/policies", json={"cap": 77}, headers=h)).status_code == 200
    p = Plant(ids={"notification_id": notes[0]["id"], "template_id": "a-tpl-7"})
    p.secrets = {"anna@x.pl", "+48600100200", "Temat tajny A", "Treść tajna A", "c-1", "o-1"}
    p.lists = [
        ("/v1/notifications", {"customer_id": "c-1"}),
        ("/v1/notifications", {"order_id": "o-1"}),
    ]
    p.check_a = [
        (f"/v1/notifications/{p.ids['notification_id']}", "o-1"),
        ("/v1/templates/a-tpl-7", "Temat tajny A"),
        ("/v1/policies", "77"),
    ]
    return p


PLANTERS = {
    "ingest": plant_ingest,
    "crm": plant_crm,
    "routing": plant_routing,
    "analytics": plant_analytics,
    "notifier": plant_notifier,
}


def _leaks(text: str, plant: Plant, sent: set[str]) -> list[str]:
    values = (set(plant.ids.values()) - {A}) | plant.secrets
    low = text.lower()
    return sorted(v for v in values - sent if v.lower() in low)


def _webhook_request(path: str) -> tuple[bytes, dict[str, str]]:
    """A body signed with B's secrets for a webhook route."""
    raw = json.dumps({"update_id": 1, "object": "whatsapp_business_account"}).encode()
    sig = "sha256=" + hmac.new(WA_B.encode(), raw, hashlib.sha256).hexdigest()
    if "/telegram/" in path or "/whatsapp/" in path or "/messenger/" in path:
        headers = {"content-type": "application/json", "x-hub-signature-256": sig}
        return raw, headers | {"x-telegram-bot-api-secret-token": TG_B}
    form = b"From=%2B48602111222&Body=hi&MessageSid=SM1"
    return form, {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class Tally:
    rows: list[tuple[str, str, str, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def _matrix(r: Running, plant: Plant, tally: Tally) -> None:
    hb = r.auth(B)
    routes = [
        (m, rc.path)
        for rc in iter_route_contexts(r.app.routes)
        for m in sorted(getattr(rc, "methods", None) or ())
        if m != "HEAD" and rc.path
    ]
    routes.sort(key=lambda mp: mp in CREATES_OWN)  # B's own creates last: they reuse A's ids
    for method, template in routes:
        calls: list[tuple[str, dict[str, str]]] = [(template, dict(QUERY.get(template, {})))]
        if method == "GET" and "{" not in template:
            calls += [(u, q) for u, q in plant.lists if u == template]
        for url_t, params in calls:
            url, sent = url_t, set(params.values())
            for name, value in plant.ids.items():
                if "{" + name + "}" in url:
                    url = url.replace("{" + name + "}", value)
                    sent.add(value)
            if "{channel_id}" in url and url.startswith("/v1/webhooks/"):
                url = url.replace("{channel_id}", plant.ids["channel_id"])
            assert "{" not in url, f"no id of A for {template}"
            kwargs: dict[str, Any] = {"params": params, "headers": dict(hb)}
            webhook = template.startswith("/v1/webhooks/")
            if webhook and method == "POST":
                raw, extra = _webhook_request(template)
                kwargs["content"], kwargs["headers"] = raw, {**hb, **extra}
            elif webhook:
                kwargs["params"] = {"hub.mode": "subscribe", "hub.verify_token": "verify-b"}
            elif (method, template) in BODIES:
                kwargs["json"] = BODIES[(method, template)](plant)
                sent |= {v for v in json.dumps(kwargs["json"]).split('"') if len(v) > 2}
            res = await r.client.request(method, url, **kwargs)
            if (method, template) in CREATES_OWN:
                ok = res.is_success
            elif webhook:
                ok = res.status_code in (401, 403, 404)
            elif "{" in template:
                ok = res.status_code in (403, 404)
            else:
                ok = res.is_success
            leaks = _leaks(res.text, plant, sent)
            tally.rows.append((r.name, method, url_t + str(params or ""), res.status_code))
            if not ok or leaks:
                tally.failures.append(
                    f"{r.name} {method} {url} {params} -> {res.status_code} leaks={leaks} "
                    f"{res.text[:200]}"
                )
    ha = r.auth(A)
    for url, value in plant.check_a:  # A's objects survived B's writes and deletes unchanged
        res = await r.client.get(url, headers=ha)
        if res.status_code != 200 or value.lower() not in res.text.lower():
            tally.failures.append(
                f"{r.name}: A's {url} changed: {res.status_code} {res.text[:200]}"
            )


async def test_every_route_of_every_service_refuses_another_tenant(tmp_path: Path) -> None:
    tally = Tally()
    for name in SERVICES:
        async with running(name, tmp_path / name) as r:
            plant = await PLANTERS[name](r)
            await _matrix(r, plant, tally)
    passed = len(tally.rows) - len(tally.failures)
    print(f"\ntenant isolation matrix: {len(tally.rows)} calls, {passed} passed")
    for name in SERVICES:
        print(f"  {name}: {sum(1 for row in tally.rows if row[0] == name)} calls")
    assert not tally.failures, "\n".join(tally.failures)


@pytest.mark.parametrize("kind", ["telegram", "whatsapp"])
async def test_webhook_signed_with_another_tenants_secret_is_refused(
    tmp_path: Path, kind: str
) -> None:
    async with running("ingest", tmp_path) as r:
        paths = {}
        for tenant, secrets in (
            (A, {"secret_token": TG_A, "app_secret": WA_A, "verify_token": "va"}),
            (B, {"secret_token": TG_B, "app_secret": WA_B, "verify_token": "vb"}),
        ):
            mine = {
                k: v for k, v in secrets.items() if (k == "secret_token") == (kind == "telegram")
            }
            res = await r.client.post(
                "/v1/channels",
                json={"kind": kind, "name": kind, "settings": {}, "secrets": mine},
                headers=r.auth(tenant),
            )
            assert res.status_code == 201, res.text
            paths[tenant] = res.json()["webhook_path"]
        if kind == "telegram":
            from tests.unit.ingest import samples

            raw = samples.telegram(1, 1, "hi")
            signed = {"content-type": "application/json", "x-telegram-bot-api-secret-token": TG_B}
        else:
            from tests.unit.ingest import samples

            raw = samples.whatsapp([samples.wa_text("wamid.x1", "hi")])
            sig = "sha256=" + hmac.new(WA_B.encode(), raw, hashlib.sha256).hexdigest()
            signed = {"content-type": "application/json", "x-hub-signature-256": sig}
        own = await r.client.post(paths[B], content=raw, headers=signed)
        assert own.status_code == 200, own.text  # the signature itself is right
        a_path = paths[A]
        refused = await r.client.post(a_path, content=raw, headers=signed)
        assert refused.status_code in (401, 403, 404), refused.text
        b_channel = paths[B].rsplit("/", 1)[1]
        crossed = a_path.rsplit("/", 1)[0] + "/" + b_channel  # A's tenant, B's channel
        res = await r.client.post(crossed, content=raw, headers=signed)
        assert res.status_code in (401, 403, 404), res.text
