"""Tenant isolation of events (issue 10): two tenants' traffic, then every event on every topic.

Two tenants drive the whole pipeline at the same time in embedded mode (all five services, one
bus): WhatsApp and API messages, an order with its shipment and a carrier delay, calls, a
survey, a customer card, a desk with an agent who replies. Some values are the same in both
tenants on purpose (an email address, an order id, a call id): natural keys that collide
across tenants must still give two tenants' separate objects. Then every record on every topic
(DLQs included) is read: its envelope, `ce_tenantid` header and partition key name one tenant,
and its payload carries none of the other tenant's personal values nor any id that also
appears in the other tenant's events.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sbcontracts.catalog import decode
from sbcontracts.topics import ALL_TOPICS, CONTROL, OUTBOUND, TICKETS
from tests.e2e.deployments import Embedded, Tenant, embedded_app
from tests.unit.ingest import samples

SHARED_EMAIL, SHARED_ORDER, SHARED_CALL = "shared.person@example.com", "ORD-1", "call-1"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SETTINGS = {"SB_OUTBOX_POLL_MS": "30", "SB_TIMER_POLL_MS": "100", "SB_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Person:
    """One tenant's customer and desk: values that must stay within that tenant."""

    tenant: str
    name: str
    email: str
    phone: str  # E.164
    wa_id: str
    agent: str
    secret: str

    def personal(self) -> set[str]:
        return {self.name, self.email, self.phone, self.wa_id, self.agent, self.secret}


A = Person(
    "acme", "Zofia Alfa", "zofia.alfa@acme.pl", "+48601111111", "48601111111", "Agnieszka Alfa",
    "tajne-acme",
)  # fmt: skip
B = Person(
    "globex", "Boris Beta", "boris.beta@globex.ru", "+48602222222", "48602222222", "Bogdan Beta",
    "secret-globex",
)  # fmt: skip


@pytest.fixture
async def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Embedded]:
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    async with embedded_app(tmp_path) as deployment:
        yield deployment


async def _desk(t: Tenant, p: Person) -> None:
    await t.ok("POST", "/v1/queues/general", json={"name": f"General {p.secret}"})
    languages = {"pl": 5, "en": 5, "ru": 5}
    await t.ok("POST", "/v1/agents/agent-1", json={"name": p.agent, "languages": languages})
    await t.ok("PUT", "/v1/agents/agent-1/presence", json={"presence": "online"})


async def _messages(t: Tenant, p: Person) -> None:
    wa_secret = f"wa-{p.secret}"
    channel = await t.ok(
        "POST",
        "/v1/channels",
        json={
            "kind": "whatsapp",
            "name": "WA",
            "settings": {},
            "secrets": {"app_secret": wa_secret, "verify_token": "v"},
        },
    )
    raw = samples.whatsapp([samples.wa_text("wamid.1", f"Paczka {p.secret}?", sender=p.wa_id)])
    headers = {"content-type": "application/json"}
    headers["x-hub-signature-256"] = samples.hub_signature(wa_secret, raw)
    await t.ok("POST", channel["webhook_path"], content=raw, headers=headers)
    for external_id, email in (("chat-1", p.email), ("chat-2", SHARED_EMAIL)):
        await t.ok(
            "POST",
            "/v1/messages",
            json={
                "external_id": external_id,
                "channel": "webchat",
                "sender": {"kind": "email", "value": email},
                "display_name": p.name,
                "text": f"Where is my order {SHARED_ORDER}? {p.secret}",
            },
        )


async def _signals(t: Tenant, p: Person) -> None:
    now = datetime.now(UTC)
    order = {
        "order_id": SHARED_ORDER,
        "customer_email": SHARED_EMAIL,
        "customer_phone": p.phone,
        "customer_name": p.name,
        "placed_at": (now - timedelta(days=3)).isoformat(),
        "promised_to": (now - timedelta(days=1)).date().isoformat(),
        "shipments": [{"shipment_id": "SHIP-1", "carrier": "dhl", "tracking_number": p.secret}],
    }
    await t.ok("POST", "/v1/orders", json=order)
    await t.ok(
        "POST",
        "/v1/shipments/events",
        json={
            "shipment_id": "SHIP-1",
            "order_id": SHARED_ORDER,
            "carrier": "dhl",
            "tracking_number": p.secret,
            "carrier_code": "WC",
            "occurred_at": now.isoformat(),
        },
    )
    for event, extra in (("offered", {}), ("answered", {"wait_ms": 4000}), ("completed", {})):
        await t.ok(
            "POST",
            "/v1/calls/events",
            json={
                "call_id": SHARED_CALL,
                "event": event,
                "occurred_at": now.isoformat(),
                "queue": "general",
                "agent_id": "agent-1",
                "caller": {"kind": "phone", "value": p.phone},
                **extra,
            },
        )
    survey = {"response_id": "r-1", "kind": "csat", "score": 5, "responded_at": now.isoformat()}
    await t.ok("POST", "/v1/surveys/responses", json={**survey, "customer_id": f"c-{p.secret}"})


async def _reply(t: Tenant, p: Person) -> None:
    async def assigned() -> list[Any] | None:
        tickets = await t.ok("GET", "/v1/tickets")
        return [x for x in tickets if x.get("agent_id")] or None

    tickets = await t.eventually(assigned, what=f"{t.tenant}'s cases assigned", factor=3)
    client, replied = t.deployment.client("routing"), 0
    for ticket in tickets:  # some cases are already closed (a completed call's): 409, skipped
        res = await client.post(
            f"/v1/tickets/{ticket['id']}/replies",
            json={"agent_id": "agent-1", "text": f"Reply {p.secret}", "status": "open"},
            headers={"Authorization": f"Bearer {t.token}"},
        )
        assert res.status_code in (201, 409), res.text
        replied += res.status_code == 201
    assert replied, f"no open case of {t.tenant} to reply to: {tickets}"

    async def sent() -> bool:
        return len(await t.topic(OUTBOUND.name)) >= replied

    await t.eventually(sent, what=f"{t.tenant}'s replies on {OUTBOUND.name}", factor=3)


async def _traffic(t: Tenant, p: Person) -> None:
    await t.ok("POST", "/v1/customers", json={"email": p.email, "phone": p.phone, "name": p.name})
    await _desk(t, p)
    await _messages(t, p)
    await _signals(t, p)
    await _reply(t, p)


async def _settled(embedded: Embedded) -> None:
    """Every consumer group caught up twice in a row (relays publish between polls)."""
    calm = 0
    while calm < 2:
        lags = await embedded.app.state.bus.lag()
        calm = calm + 1 if not any(lags.values()) else 0
        await asyncio.sleep(0.3)


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)] if value is not None else []


async def test_no_event_carries_another_tenants_data(embedded: Embedded) -> None:
    ta, tb = (Tenant(embedded, p.tenant, embedded.token(p.tenant)) for p in (A, B))
    await asyncio.gather(_traffic(ta, A), _traffic(tb, B))
    await _settled(embedded)
    people = {A.tenant: A, B.tenant: B}
    counts: Counter[tuple[str, str]] = Counter()
    ids: dict[str, set[str]] = {A.tenant: set(), B.tenant: set()}
    failures: list[str] = []
    for topic in [t.name for t in ALL_TOPICS if t != CONTROL] + [
        t.name + ".dlq" for t in ALL_TOPICS
    ]:
        for record in await embedded.read_topic(topic):
            event = decode(record.value)
            tenant, where = event.tenantid, f"{topic} {event.type} {event.id}"
            counts[(topic, tenant)] += 1
            headers = {k: _text(v) for k, v in dict(record.headers).items()}
            if tenant not in people:
                failures.append(f"{where}: unknown tenant {tenant!r}")
                continue
            if headers.get("ce_tenantid") != tenant:
                failures.append(f"{where}: header ce_tenantid {headers.get('ce_tenantid')!r}")
            if not _text(record.key).startswith(f"{tenant}:"):
                failures.append(f"{where}: key {record.key!r} is not {tenant}'s")
            payload = json.dumps(event.model_dump(mode="json")["data"], ensure_ascii=False)
            other = B if tenant == A.tenant else A
            leaked = sorted(v for v in other.personal() if v.lower() in payload.lower())
            if leaked:
                failures.append(f"{where} ({tenant}) carries {other.tenant}'s {leaked}")
            ids[tenant] |= {
                m for s in [*_strings(event.data), event.subject or ""] for m in UUID.findall(s)
            }
    shared = ids[A.tenant] & ids[B.tenant]
    failures += [f"id {i} appears in both tenants' events" for i in sorted(shared)]
    print(f"\nevents checked: {sum(counts.values())} on {len({t for t, _ in counts})} topics")
    for (topic, tenant), n in sorted(counts.items()):
        print(f"  {topic} {tenant}: {n}")
    for name in (OUTBOUND.name, TICKETS.name, "sb.customers.v1", "sb.commerce.v1", "sb.calls.v1"):
        for p in (A, B):
            assert counts[(name, p.tenant)] > 0, f"no {name} event of {p.tenant}: traffic missing"
    assert not any(n for (topic, _), n in counts.items() if topic.endswith(".dlq")), counts
    assert not failures, "\n".join(failures)
