"""Issue 9's end-to-end scenarios, each run on both run modes (tests/e2e/deployments.py).

- embedded: all five services in one FastAPI app (in-process ASGI), a fresh data dir per test;
- stack: deploy/local/stack.sh — real PostgreSQL, real Kafka, five service processes — started
  once for this module (from an empty data dir) and stopped at its end; each test is its own
  tenant, registered and given a token through the `switchboard` CLI.

Only public HTTP APIs and provider-format webhooks are used; effects are observed through the
APIs, the topics adapters read (sb.outbound.v1) and consumer-group progress. Nothing fakes the
clock: waits that would take hours are given as data (a last scan 50 h ago is past the stall
threshold; quiet hours are placed around the customer's current local time; the queue escalates
after 1 s). Both modes get the same test settings: short poll intervals for the outbox relay and
the timer pollers, so escalation and alert timers fire within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sbcontracts.topics import CUSTOMERS, OUTBOUND, TICKETS
from tests.e2e.deployments import ROOT, LocalStack, Tenant, embedded_app, new_tenant_name
from tests.unit.ingest import samples

pytestmark = pytest.mark.timeout(900)

# Test settings, the same for both modes (every service reads them from the environment).
TEST_SETTINGS = {
    "SB_OUTBOX_POLL_MS": "50",
    "SB_TIMER_POLL_MS": "100",
    "SB_NOTIFIER_TIMER_POLL_MS": "100",
    "SB_LIVE_REFRESH_MS": "200",
    "SB_LOG_LEVEL": "WARNING",
}


@pytest.fixture(scope="module")
def local_stack() -> Iterator[LocalStack]:
    """The local stack, up for every scenario of this module, down at its end."""
    # its own data and ports: never the test broker/database, `make up` or test_run_modes
    stack = LocalStack(
        data_dir=ROOT / ".data" / "test-e2e-stack",
        kafka_port=19392,
        pg_port=15732,
        base_port=8700,
        settings=TEST_SETTINGS | {"SB_KAFKA_FAST": "1"},
    )
    with stack.running():
        yield stack


@pytest.fixture(
    params=[
        "embedded",
        pytest.param("stack", marks=[pytest.mark.kafka, pytest.mark.postgres]),
    ]
)
async def sb(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Tenant]:
    """A fresh tenant on the run mode under test."""
    tenant = new_tenant_name()
    if request.param == "stack":
        stack: LocalStack = request.getfixturevalue("local_stack")
        token = await asyncio.to_thread(stack.token, tenant)
        try:
            yield Tenant(stack, tenant, token)
        finally:
            await stack.aclose()
        return
    for name, value in TEST_SETTINGS.items():
        monkeypatch.setenv(name, value)
    async with embedded_app(tmp_path) as embedded:
        yield Tenant(embedded, tenant, embedded.token(tenant))


def _iso(at: datetime) -> str:
    return at.isoformat()


async def _kpis(sb: Tenant, start: datetime, kpis: str, **params: Any) -> dict[str, Any]:
    """The KPI totals over [start - 1 h, now + 1 h)."""
    query = {
        "from": _iso(start - timedelta(hours=1)),
        "to": _iso(datetime.now(UTC) + timedelta(hours=1)),
        "kpi": kpis,
    } | params
    return dict(await sb.ok("GET", "/v1/kpis", params=query))


async def test_calls_give_service_level_abandonment_and_a_callback_case(sb: Tenant) -> None:
    await sb.ok("POST", "/v1/queues/voice", json={"name": "Voice", "position": 10})
    await sb.ok(
        "POST",
        "/v1/queues/callbacks",
        json={"name": "Callbacks", "position": 20, "callback": True},
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    # Four calls answered (waits 5, 10, 15, 40 s) and two abandoned (after 3 s and 30 s).
    calls: list[tuple[str, str, int]] = [
        ("c1", "answered", 5_000),
        ("c2", "answered", 10_000),
        ("c3", "answered", 15_000),
        ("c4", "answered", 40_000),
        ("c5", "abandoned", 3_000),
        ("c6", "abandoned", 30_000),
    ]
    for n, (call_id, outcome, wait_ms) in enumerate(calls):
        offered = start + timedelta(seconds=n * 60)
        await sb.ok(
            "POST",
            "/v1/calls/events",
            json={
                "call_id": call_id,
                "event": "offered",
                "occurred_at": _iso(offered),
                "queue": "voice",
                "caller": {"kind": "phone", "value": f"+4860010020{n}"},
            },
        )
        body: dict[str, Any] = {
            "call_id": call_id,
            "event": outcome,
            "occurred_at": _iso(offered + timedelta(milliseconds=wait_ms)),
            "offered_at": _iso(offered),
            "queue": "voice",
            "wait_ms": wait_ms,
            "caller": {"kind": "phone", "value": f"+4860010020{n}"},
        }
        if outcome == "answered":
            body["agent_id"] = "a1"
        await sb.ok("POST", "/v1/calls/events", json=body)

    async def figures() -> dict[str, Any] | None:
        doc = await _kpis(sb, start, "offered,answered,abandoned,service_level,abandonment_rate")
        total = doc["rows"][0]["kpis"]
        done = (
            total.get("offered", {}).get("value") == 6
            and total.get("abandoned", {}).get("value") == 2
        )
        return total if done else None

    kpis = await sb.eventually(figures, what="six offered calls in the KPIs")
    assert kpis["answered"]["value"] == 4
    # F1, T = 20 s: (answered within 20 s: 3 + abandoned within 20 s: 1) / (4 + 2)
    assert kpis["service_level"]["value"] == pytest.approx(4 / 6)
    # (ab - short abandons (≤ 5 s): 1) / (offered - short: 5)
    assert kpis["abandonment_rate"]["value"] == pytest.approx(1 / 5)

    async def callbacks() -> list[dict[str, Any]] | None:
        found = await sb.ok("GET", "/v1/tickets", params={"queue": "callbacks"})
        return list(found) if len(found) == 2 else None

    cases = await sb.eventually(callbacks, what="a callback case per abandoned call")
    assert {c["kind"] for c in cases} == {"callback"}
    assert {c["channel"] for c in cases} == {"voice"}
    assert {c["priority"] for c in cases} == {"high"}
    assert await sb.ok("GET", "/v1/tickets", params={"queue": "voice"}) == []


EMAIL_SECRET = "email-signing-secret"
WA_SECRET = "whatsapp-app-secret"


async def _email_channel(sb: Tenant) -> str:
    """A raw-MIME email channel; its webhook path."""
    channel = await sb.ok(
        "POST",
        "/v1/channels",
        json={
            "kind": "email",
            "name": "Support inbox",
            "settings": {"inbox": "support@shop.example"},
            "secrets": {"signing_secret": EMAIL_SECRET},
        },
    )
    return str(channel["webhook_path"])


def _mime(sender: str, subject: str, text: str, message_id: str) -> bytes:
    """An RFC 5322 message as a mail server hands it over."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@shop.example"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = formatdate(localtime=False)
    msg.set_content(text)
    return msg.as_bytes()


async def _post_email(sb: Tenant, path: str, raw: bytes) -> None:
    sig = "sha256=" + hmac.new(EMAIL_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    await sb.ok(
        "POST",
        path,
        content=raw,
        headers={"content-type": "message/rfc822", "x-switchboard-signature-256": sig},
    )


async def test_nobody_online_case_escalates_and_is_assigned_when_an_agent_comes_online(
    sb: Tenant,
) -> None:
    await sb.ok("POST", "/v1/queues/general", json={"name": "General", "position": 99})
    await sb.ok(
        "POST",
        "/v1/queues/delivery",
        json={
            "name": "Delivery",
            "position": 1,
            "filters": [{"categories": ["delivery_delay"]}],
            "fallback_queue": "general",
            "escalate_after_s": 1,
        },
    )
    agent = await sb.ok(
        "POST",
        "/v1/agents/ann",
        json={"name": "Ann", "languages": {"en": 5}, "queues": ["general"]},
    )
    assert agent["presence"] == "offline"
    path = await _email_channel(sb)
    await _post_email(
        sb,
        path,
        _mime(
            "Mary Smith <mary@example.org>",
            "Late parcel",
            "Hello, my parcel was supposed to arrive yesterday and it is still not here. "
            "Where is my parcel?",
            "<late-1@example.org>",
        ),
    )

    async def waiting_in(queue: str) -> list[dict[str, Any]] | None:
        found = await sb.ok("GET", "/v1/tickets", params={"queue": queue})
        return list(found) if found else None

    [case] = await sb.eventually(lambda: waiting_in("delivery"), what="the case in delivery")
    assert case["agent_id"] is None
    assert case["category"] == "delivery_delay"
    [moved] = await sb.eventually(lambda: waiting_in("general"), what="escalation to general")
    assert moved["id"] == case["id"]
    assert moved["agent_id"] is None
    await asyncio.sleep(0.3)  # still nobody online: it keeps waiting
    assert (await sb.ok("GET", f"/v1/tickets/{case['id']}"))["agent_id"] is None

    await sb.ok("PUT", "/v1/agents/ann/presence", json={"presence": "online"})
    # "The moment": assigned within the presence request itself, no poll needed.
    ticket = await sb.ok("GET", f"/v1/tickets/{case['id']}")
    assert (ticket["agent_id"], ticket["queue_id"]) == ("ann", "general")
    assert (await sb.ok("GET", "/v1/agents/ann"))["load"] == 10


async def _whatsapp_channel(sb: Tenant) -> str:
    """A WhatsApp Cloud API channel; its webhook path."""
    channel = await sb.ok(
        "POST",
        "/v1/channels",
        json={
            "kind": "whatsapp",
            "name": "WhatsApp",
            "settings": {"phone_number_id": "106540352242922"},
            "secrets": {"app_secret": WA_SECRET, "verify_token": "verify-me"},
        },
    )
    return str(channel["webhook_path"])


async def _post_whatsapp(sb: Tenant, path: str, wamid: str, text: str, sender: str) -> None:
    raw = samples.whatsapp([samples.wa_text(wamid, text, sender=sender)])
    await sb.ok(
        "POST",
        path,
        content=raw,
        headers={
            "content-type": "application/json",
            "x-hub-signature-256": samples.hub_signature(WA_SECRET, raw),
        },
    )


async def _polish_desk(sb: Tenant) -> None:
    """A Polish delivery queue, a catch-all, a Polish agent online and an English one."""
    await sb.ok("POST", "/v1/queues/general", json={"name": "General", "position": 99})
    await sb.ok(
        "POST",
        "/v1/queues/pl-delivery",
        json={
            "name": "Polish delivery",
            "position": 1,
            "filters": [{"categories": ["delivery_delay"], "languages": ["pl"]}],
        },
    )
    await sb.ok("POST", "/v1/agents/en-agent", json={"name": "Emma", "languages": {"en": 5}})
    await sb.ok("POST", "/v1/agents/pl-agent", json={"name": "Piotr", "languages": {"pl": 5}})
    for agent in ("en-agent", "pl-agent"):
        await sb.ok("PUT", f"/v1/agents/{agent}/presence", json={"presence": "online"})


async def test_polish_email_then_whatsapp_is_one_customer_one_case_replied_on_whatsapp(
    sb: Tenant,
) -> None:
    await _polish_desk(sb)
    email_path = await _email_channel(sb)
    wa_path = await _whatsapp_channel(sb)
    start = datetime.now(UTC)
    await sb.ok(
        "POST",
        "/v1/orders",
        json={
            "order_id": "PL-1001",
            "customer_email": "jozef.wisniewski@example.pl",
            "customer_phone": "+48 600 100 200",
            "customer_name": "Józef Wiśniewski",
            "customer_language": "pl",
            "customer_timezone": "Europe/Warsaw",
            "placed_at": _iso(start - timedelta(days=3)),
        },
    )

    async def customer() -> dict[str, Any] | None:
        found = await sb.ok("GET", "/v1/customers", params={"email": "jozef.wisniewski@example.pl"})
        return found[0] if found else None

    await sb.eventually(customer, what="the order's customer card")
    await _post_email(
        sb,
        email_path,
        _mime(
            "Józef Wiśniewski <jozef.wisniewski@example.pl>",
            "Spóźniona paczka",
            samples.TEXTS["pl"],
            "<pl-late-1@example.pl>",
        ),
    )

    async def one_case() -> list[dict[str, Any]] | None:
        found = await sb.ok("GET", "/v1/tickets")
        return list(found) if found and found[0]["agent_id"] else None

    [case] = await sb.eventually(one_case, what="the email's case assigned")
    assert (case["queue_id"], case["agent_id"], case["language"]) == (
        "pl-delivery",
        "pl-agent",
        "pl",
    )
    await _post_whatsapp(
        sb, wa_path, "wamid.PL1", "Halo, piszę też tutaj. Gdzie jest moja paczka?", "48600100200"
    )

    async def two_messages() -> dict[str, Any] | None:
        ticket = await sb.ok("GET", f"/v1/tickets/{case['id']}")
        inbound = [m for m in ticket["messages"] or [] if m["direction"] == "inbound"]
        return ticket if len(inbound) == 2 else None

    ticket = await sb.eventually(two_messages, what="the WhatsApp message joining the case")
    assert [m["channel"] for m in ticket["messages"] if m["direction"] == "inbound"] == [
        "email",
        "whatsapp",
    ]
    assert len(await sb.ok("GET", "/v1/tickets")) == 1
    card = await customer()
    assert card is not None
    assert card["id"] == case["customer_id"]
    for params in ({"email": "jozef.wisniewski@example.pl"}, {"phone": "+48600100200"}):
        found = await sb.ok("GET", "/v1/customers", params=params)
        assert [c["id"] for c in found] == [card["id"]], params

    await sb.ok(
        "POST",
        f"/v1/tickets/{case['id']}/replies",
        json={
            "agent_id": "pl-agent",
            "text": "Dzień dobry, paczka dotrze jutro.",
            "status": "open",
        },
    )

    async def outbound() -> list[Any] | None:
        sent = [e for e in await sb.topic(OUTBOUND.name) if e.data.ticket_id == case["id"]]
        return sent or None

    [reply] = await sb.eventually(outbound, what="the reply as an outbound message")
    assert reply.data.channel == "whatsapp"
    await sb.ok("POST", f"/v1/tickets/{case['id']}/resolve")
    responded = datetime.now(UTC)
    for response_id, kind, score in (("r-csat", "csat", 5), ("r-nps", "nps", 9)):
        await sb.ok(
            "POST",
            "/v1/surveys/responses",
            json={
                "response_id": response_id,
                "kind": kind,
                "score": score,
                "ticket_id": case["id"],
                "customer_id": card["id"],
                "responded_at": _iso(responded),
            },
        )

    async def story() -> dict[str, Any] | None:
        doc = await _kpis(sb, start, "frt,resolution_time,csat,nps,opened,resolved")
        k = doc["rows"][0]["kpis"]
        done = k["csat"]["value"] is not None and k["nps"]["value"] is not None
        return k if done and k["resolved"]["value"] == 1 else None

    kpis = await sb.eventually(story, what="the story's KPIs")
    final = await sb.ok("GET", f"/v1/tickets/{case['id']}")
    assert final["status"] == "resolved"
    assert kpis["opened"]["value"] == 1
    assert kpis["csat"]["value"] == 1.0
    assert kpis["nps"]["value"] == 100.0
    tickets = await sb.topic(TICKETS.name)
    [replied] = [e for e in tickets if e.type.endswith("agent_replied")]
    [resolved] = [e for e in tickets if e.type.endswith(".resolved")]
    assert kpis["frt"]["value"] == pytest.approx(replied.data.response_ms / 1000)
    assert kpis["resolution_time"]["value"] == pytest.approx(resolved.data.resolution_ms / 1000)
    # the clocks start at the email's Date header, which has whole seconds only
    elapsed = (datetime.now(UTC) - start.replace(microsecond=0)).total_seconds()
    assert 0 <= kpis["frt"]["value"] <= elapsed
    assert kpis["frt"]["value"] <= kpis["resolution_time"]["value"] <= elapsed


async def test_stalled_shipment_alerts_once_and_the_case_opens_with_the_alert_on_its_timeline(
    sb: Tenant,
) -> None:
    await _polish_desk(sb)
    wa_path = await _whatsapp_channel(sb)
    now = datetime.now(UTC)
    warsaw = now.astimezone(ZoneInfo("Europe/Warsaw"))
    # Quiet hours well away from the customer's current local time: they are awake now.
    quiet = {
        "quiet_start": (warsaw + timedelta(hours=6)).strftime("%H:%M"),
        "quiet_end": (warsaw + timedelta(hours=8)).strftime("%H:%M"),
    }
    await sb.ok("PUT", "/v1/policies", json=quiet)
    await sb.ok(
        "POST",
        "/v1/orders",
        json={
            "order_id": "PL-2002",
            "customer_email": "anna.nowak@example.pl",
            "customer_phone": "+48 600 100 200",
            "customer_name": "Anna Nowak",
            "customer_language": "pl",
            "customer_timezone": "Europe/Warsaw",
            "placed_at": _iso(now - timedelta(days=4)),
            "promised_to": (now + timedelta(days=2)).date().isoformat(),
            "shipments": [{"shipment_id": "S-2002", "carrier": "dhl", "tracking_number": "JD2"}],
        },
    )

    async def card() -> dict[str, Any] | None:
        found = await sb.ok("GET", "/v1/customers", params={"email": "anna.nowak@example.pl"})
        return found[0] if found else None

    customer = await sb.eventually(card, what="the order's customer card")
    await sb.ok("PATCH", f"/v1/customers/{customer['id']}", json={"preferred_channel": "sms"})

    async def preference_published() -> bool:
        events = await sb.topic(CUSTOMERS.name)
        return any(getattr(e.data, "preferred_channel", None) == "sms" for e in events)

    await sb.eventually(preference_published, what="the preference on sb.customers.v1")
    # notifier's read model has it once its consumer group caught up with the topic
    await sb.eventually(
        lambda: sb.caught_up("notifier.customers", CUSTOMERS.name), what="notifier read it"
    )
    # The last scan was 50 h ago: past the default stall threshold (48 h).
    await sb.ok(
        "POST",
        "/v1/shipments/events",
        json={
            "shipment_id": "S-2002",
            "order_id": "PL-2002",
            "carrier": "dhl",
            "tracking_number": "JD2",
            "status": "in_transit",
            "location": "Stryków",
            "occurred_at": _iso(now - timedelta(hours=50)),
        },
    )

    async def alerts() -> list[Any] | None:
        out = [e for e in await sb.topic(OUTBOUND.name) if e.data.ticket_id is None]
        return out or None

    [alert] = await sb.eventually(alerts, what="the proactive alert")
    assert alert.data.channel == "sms"
    assert alert.data.recipient.value == "+48600100200"
    assert "PL-2002" in alert.data.text and "opóźniona" in alert.data.text  # in Polish
    [sent] = await sb.ok("GET", "/v1/notifications", params={"order_id": "PL-2002"})
    assert (sent["status"], sent["delay_reason"], sent["channel"]) == ("sent", "stalled", "sms")
    assert sent["customer_id"] == customer["id"]

    await _post_whatsapp(sb, wa_path, "wamid.PL2", "Gdzie jest moja paczka?", "48600100200")

    async def case() -> dict[str, Any] | None:
        found = await sb.ok("GET", "/v1/tickets", params={"customer": customer["id"]})
        return found[0] if found else None

    ticket = await sb.eventually(case, what="the customer's case")

    async def timeline() -> list[dict[str, Any]] | None:
        doc = await sb.ok("GET", f"/v1/customers/{customer['id']}/timeline")
        items = doc["entries"]
        kinds = {i["kind"] for i in items}
        return items if any("ticket" in k or "case" in k for k in kinds) else None

    items = await sb.eventually(timeline, what="the case on the customer's timeline")
    # Newest first: the case opened after the alert that was sent, both on the one timeline.
    kinds = [(i["kind"], i["summary"]) for i in items]
    opened = kinds.index(("ticket", "case opened"))
    assert ("notification", "sent: stalled (sent)") in kinds[opened + 1 :]
    assert (ticket["queue_id"], ticket["agent_id"], ticket["language"]) == (
        "pl-delivery",
        "pl-agent",
        "pl",
    )
    # Back on track (an estimate within the promise ends the episode), then a weather delay:
    # a new delay episode while the case is open is suppressed (and noted on it), never sent.
    for code, hours_ago, extra in (
        (None, 2, {"status": "in_transit", "estimate_to": _iso(now + timedelta(days=1))}),
        ("WX", 1, {}),
    ):
        await sb.ok(
            "POST",
            "/v1/shipments/events",
            json={
                "shipment_id": "S-2002",
                "order_id": "PL-2002",
                "carrier": "dhl",
                "tracking_number": "JD2",
                "occurred_at": _iso(now - timedelta(hours=hours_ago)),
                **({"carrier_code": code} if code else {}),
                **extra,
            },
        )

    async def suppressed() -> list[dict[str, Any]] | None:
        found = await sb.ok("GET", "/v1/notifications", params={"order_id": "PL-2002"})
        return found if any(n["status"] == "suppressed" for n in found) else None

    found = await sb.eventually(suppressed, what="the second delay suppressed by the open case")
    [second] = [n for n in found if n["status"] == "suppressed"]
    assert (second["reason"], second["customer_id"]) == ("open_case", customer["id"])

    async def noted() -> list[dict[str, Any]] | None:
        doc = await sb.ok("GET", f"/v1/tickets/{ticket['id']}")
        notes = [m for m in doc["messages"] if m["direction"] == "internal"]
        return notes or None

    [note] = await sb.eventually(noted, what="the suppressed alert noted on the case")
    assert note["author"] == "notifier" and "PL-2002" in note["text"]
    assert len(await alerts() or []) == 1  # no second alert went out
