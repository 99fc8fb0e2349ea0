"""A mixed workload for the local stack and the provider-like sender that pushes it.

Messages arrive as provider webhooks (WhatsApp and Messenger batches, Telegram, Twilio SMS,
Mailgun, raw MIME email) with valid signatures; orders with shipments (some delayed by the
carrier), and phone calls (answered or abandoned) give crm, notifier, routing and analytics
their other work. Every sender is its own customer on one channel and writes ~3 times, so the
expected figures are known exactly: one case per sender, one timeline row per message, one
alert per delayed shipment, one callback case per abandoned call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from aiokafka import AIOKafkaProducer

from ingest.domain.signatures import twilio_signature
from sbcontracts.catalog import encode
from sbcontracts.envelope import new_event
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.events.ingest import InboundAdapterMessage
from sbcontracts.topics import INBOUND, partition_key

TEXTS = (
    "Dzień dobry, moja paczka miała przyjść wczoraj i nadal jej nie ma. Co się dzieje?",
    "Здравствуйте, моя посылка должна была прийти вчера, но её до сих пор нет.",
    "Bună ziua, coletul meu trebuia să ajungă ieri și încă nu a sosit.",
    "Hello, my parcel was supposed to arrive yesterday and it is still not here.",
    "Hi, I was charged twice for my last order, please refund one payment.",
    "The box arrived damaged and the glass inside is broken.",
)
CHANNELS = ("whatsapp", "messenger", "telegram", "twilio_sms", "mailgun", "email")
SECRETS = {
    "whatsapp": {"app_secret": "wa-secret", "verify_token": "wa-verify"},
    "messenger": {"app_secret": "ms-secret", "verify_token": "ms-verify"},
    "telegram": {"secret_token": "tg-secret"},
    "twilio_sms": {"auth_token": "tw-token"},
    "mailgun": {"signing_key": "mg-key"},
    "email": {"signing_secret": "em-secret"},
}
SETTINGS: dict[str, dict[str, Any]] = {
    "whatsapp": {"phone_number_id": "106540352242922"},
    "messenger": {"page_id": "1234567890"},
}
SCOPES = (
    "messages:write messages:read channels:write channels:read calls:write orders:write "
    "shipments:write surveys:write customers:read tickets:read tickets:write routing:admin "
    "kpis:read notifications:read notifications:write"
).split()


@dataclass(frozen=True)
class Request:
    """One HTTP request a provider or integrator sends (and re-sends until it gets a 2xx)."""

    path: str
    body: bytes
    headers: dict[str, str]
    messages: int = 0  # customer messages it carries
    webhook: bool = False
    # Signed when first sent (Mailgun signs a timestamp that must be recent); the signed
    # request is then re-sent unchanged, as the provider retries it.
    signer: Callable[[], Request] | None = None

    def signed(self) -> Request:
        return self if self.signer is None else self.signer()


@dataclass
class Expected:
    """What the stack must hold once the workload has been accepted and processed."""

    messages: int = 0
    senders: int = 0
    orders: int = 0
    delayed_shipments: int = 0
    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    surveys: int = 0

    @property
    def cases(self) -> int:
        return self.senders + self.abandoned


@dataclass
class Workload:
    """Chains of requests (each chain in order, chains concurrently) and what they should do."""

    chains: list[list[Request]]
    adapter: list[tuple[bytes, bytes]]  # (key, CloudEvent) for sb.inbound.v1
    expected: Expected
    started: datetime


@dataclass
class Tally:
    """What the sender saw."""

    sent: int = 0
    accepted: int = 0
    retries: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- building the workload


class Builder:
    """Builds signed provider requests for the channels configured on the stack."""

    def __init__(
        self, paths: dict[str, str], ingest_url: str, run: str, seed: int, tenant: str = ""
    ) -> None:
        self.tenant = tenant
        self.paths = paths
        self.ingest_url = ingest_url
        self.run = run
        self.rnd = random.Random(seed)
        self.now = datetime.now(UTC)
        self.counter = 0

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def _text(self) -> str:
        return f"{self.rnd.choice(TEXTS)} ({self.run}-{self._next()})"

    def _meta(self, kind: str, doc: dict[str, Any], n: int) -> Request:
        raw = json.dumps(doc, ensure_ascii=False).encode()
        mac = hmac.new(SECRETS[kind]["app_secret"].encode(), raw, hashlib.sha256)
        return Request(
            self.paths[kind],
            raw,
            {
                "content-type": "application/json",
                "x-hub-signature-256": "sha256=" + mac.hexdigest(),
            },
            messages=n,
            webhook=True,
        )

    def whatsapp(self, senders: list[str]) -> Request:
        ts = str(int(self.now.timestamp()))
        msgs = [
            {
                "from": s,
                "id": f"wamid.{self.run}.{self._next()}",
                "timestamp": ts,
                "type": "text",
                "text": {"body": self._text()},
            }
            for s in senders
        ]
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": "48221234567",
                "phone_number_id": "106540352242922",
            },
            "contacts": [{"profile": {"name": "Klient"}, "wa_id": s} for s in senders],
            "messages": msgs,
        }
        doc = {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}
            ],
        }
        return self._meta("whatsapp", doc, len(senders))

    def messenger(self, senders: list[str]) -> Request:
        ms = int(self.now.timestamp() * 1000)
        events = [
            {
                "sender": {"id": s},
                "recipient": {"id": "1234567890"},
                "timestamp": ms,
                "message": {"mid": f"m_{self.run}.{self._next()}", "text": self._text()},
            }
            for s in senders
        ]
        doc = {"object": "page", "entry": [{"id": "1234567890", "time": ms, "messaging": events}]}
        return self._meta("messenger", doc, len(senders))

    def telegram(self, user: str) -> Request:
        n = self._next()
        doc = {
            "update_id": n,
            "message": {
                "message_id": n,
                "from": {"id": int(user), "is_bot": False, "first_name": "Иван"},
                "chat": {"id": int(user), "first_name": "Иван", "type": "private"},
                "date": int(self.now.timestamp()),
                "text": self._text(),
            },
        }
        headers = {
            "content-type": "application/json",
            "x-telegram-bot-api-secret-token": SECRETS["telegram"]["secret_token"],
        }
        raw = json.dumps(doc, ensure_ascii=False).encode()
        return Request(self.paths["telegram"], raw, headers, messages=1, webhook=True)

    def sms(self, phone: str) -> Request:
        sid = "SM" + hashlib.sha256(f"{self.run}.{self._next()}".encode()).hexdigest()[:32]
        params = {
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": self._text(),
            "To": "+40312345678",
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": "AC" + "0" * 32,
            "From": phone,
            "ApiVersion": "2010-04-01",
        }
        path = self.paths["twilio_sms"]
        sig = twilio_signature(SECRETS["twilio_sms"]["auth_token"], self.ingest_url + path, params)
        headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": sig}
        return Request(path, urlencode(params).encode(), headers, messages=1, webhook=True)

    def mailgun(self, email: str) -> Request:
        n = self._next()
        token, key, path = (
            f"tok-{self.run}-{n}",
            SECRETS["mailgun"]["signing_key"],
            self.paths["mailgun"],
        )
        fields = {
            "from": f"Ana <{email}>",
            "recipient": "ajutor@magazin.ro",
            "subject": "Comanda",
            "body-plain": self._text(),
            "Message-Id": f"<mg-{self.run}-{n}@example.ro>",
            "token": token,
        }
        headers = {"content-type": "application/x-www-form-urlencoded"}

        def sign() -> Request:
            stamp = str(int(time.time()))
            mac = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
            body = urlencode(fields | {"timestamp": stamp, "signature": mac}).encode()
            return Request(path, body, headers, 1, True)

        return Request(path, b"", headers, 1, True, signer=sign)

    def email(self, address: str) -> Request:
        msg = EmailMessage()
        msg["From"] = f"Customer <{address}>"
        msg["To"] = "support@shop.example"
        msg["Subject"] = "Parcel"
        msg["Message-ID"] = f"<em-{self.run}-{self._next()}@example.org>"
        msg["Date"] = format_datetime(self.now)
        msg.set_content(self._text())
        raw = msg.as_bytes()
        secret = SECRETS["email"]["signing_secret"].encode()
        sig = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
        headers = {"content-type": "message/rfc822", "x-switchboard-signature-256": sig}
        return Request(self.paths["email"], raw, headers, messages=1, webhook=True)

    def api(self, path: str, doc: dict[str, Any]) -> Request:
        return Request(path, json.dumps(doc).encode(), {"content-type": "application/json"})


def _sender(channel: str, run_no: int, i: int) -> str:
    """A handle unique to (run, channel, i); never shared across channels (no merges)."""
    n = run_no * 100_000 + i
    return {
        "whatsapp": f"48600{n:06d}",
        "messenger": f"77{n:014d}",
        "telegram": f"5{n:09d}",
        "twilio_sms": f"+4072{n % 10:01d}{n // 10:06d}"[:12],
        "mailgun": f"mg{n}@client.example.ro",
        "email": f"em{n}@client.example.org",
    }[channel]


def build(
    b: Builder, *, messages: int, orders: int, calls: int, run_no: int, adapter: int = 0
) -> Workload:
    """`messages` webhook messages over every channel, `adapter` more from an adapter over
    Kafka (sb.inbound.v1), plus orders (half with a survey answer) and calls."""
    exp = Expected()
    chains: list[list[Request]] = []
    events = [_adapter_event(b, exp, i) for i in range(adapter)]
    # Senders per channel, each writing ~3 messages; batches for Meta channels.
    per_channel = [messages // len(CHANNELS)] * len(CHANNELS)
    per_channel[0] += messages - sum(per_channel)
    for channel, count in zip(CHANNELS, per_channel, strict=True):
        senders = [_sender(channel, run_no, i) for i in range(max(1, count // 3))]
        exp.senders += min(len(senders), count)
        queue = [senders[i % len(senders)] for i in range(count)]
        b.rnd.shuffle(queue)
        while queue:
            if channel in ("whatsapp", "messenger"):
                size = min(len(queue), b.rnd.randint(1, 5))
                batch, queue = queue[:size], queue[size:]
                req = b.whatsapp(batch) if channel == "whatsapp" else b.messenger(batch)
            else:
                one, queue = queue[0], queue[1:]
                req = {
                    "telegram": b.telegram,
                    "twilio_sms": b.sms,
                    "mailgun": b.mailgun,
                    "email": b.email,
                }[channel](one)
            chains.append([req])
            exp.messages += req.messages
    for i in range(orders):
        chains.append(_order_chain(b, exp, run_no, i))
    for i in range(calls):
        chains.append(_call_chain(b, exp, run_no, i))
    b.rnd.shuffle(chains)
    return Workload(chains, events, exp, b.now)


def _adapter_event(b: Builder, exp: Expected, i: int) -> tuple[bytes, bytes]:
    """A web-chat message an adapter publishes on sb.inbound.v1 (its own sender)."""
    data = InboundAdapterMessage(
        adapter="chaos-widget",
        channel=Channel.WEBCHAT,
        external_id=f"wc-{b.run}-{i}",
        sender_kind=HandleKind.EMAIL,
        sender=f"wc{i}@visitor.example",
        sent_at=b.now,
        conversation_id=f"conv-{i}",
        text=b._text(),
    )
    event = new_event(data, tenant_id=b.tenant, source="chaos-widget")
    exp.messages += 1
    exp.senders += 1
    return partition_key(b.tenant, f"conv-{i}").encode(), encode(event)


def _order_chain(b: Builder, exp: Expected, run_no: int, i: int) -> list[Request]:
    order_id, ship = f"CH-{run_no}-{i}", f"SH-{run_no}-{i}"
    now = b.now
    chain = [
        b.api(
            "/v1/orders",
            {
                "order_id": order_id,
                "customer_email": f"buyer{run_no}x{i}@shop.example",
                "customer_name": "Buyer",
                "customer_language": "en",
                "customer_timezone": "UTC",
                "placed_at": (now - timedelta(days=2)).isoformat(),
                "promised_to": (now + timedelta(days=2)).date().isoformat(),
                "shipments": [{"shipment_id": ship, "carrier": "dhl", "tracking_number": ship}],
            },
        ),
        _scan(b, order_id, ship, now - timedelta(hours=3), status="in_transit"),
    ]
    exp.orders += 1
    if i % 2 == 1:  # the buyer answers a CSAT survey
        survey = {
            "response_id": f"sv-{b.run}-{i}",
            "kind": "csat",
            "score": 5,
            "customer_id": f"buyer-{b.run}-{i}",
            "responded_at": now.isoformat(),
        }
        chain.append(b.api("/v1/surveys/responses", survey))
        exp.surveys += 1
    if i % 2 == 0:  # a weather delay from the carrier: one alert
        chain.append(_scan(b, order_id, ship, now - timedelta(hours=1), carrier_code="WX"))
        exp.delayed_shipments += 1
    return chain


def _scan(b: Builder, order_id: str, ship: str, at: datetime, **extra: str) -> Request:
    doc = {
        "shipment_id": ship,
        "order_id": order_id,
        "carrier": "dhl",
        "tracking_number": ship,
        "occurred_at": at.isoformat(),
    }
    return b.api("/v1/shipments/events", doc | extra)


def _call_chain(b: Builder, exp: Expected, run_no: int, i: int) -> list[Request]:
    call_id = f"call-{run_no}-{i}"
    offered = b.now - timedelta(minutes=30) + timedelta(seconds=i % 600)
    caller = {"kind": "phone", "value": f"+4420{run_no:02d}{i:06d}"}
    base = {"call_id": call_id, "queue": "voice", "caller": caller}
    wait = 1000 + (i * 37) % 30_000
    chain = [
        b.api("/v1/calls/events", base | {"event": "offered", "occurred_at": offered.isoformat()})
    ]
    exp.calls += 1
    end = offered + timedelta(milliseconds=wait)
    common = {"offered_at": offered.isoformat(), "wait_ms": wait, "occurred_at": end.isoformat()}
    if i % 4 == 3:
        chain.append(b.api("/v1/calls/events", base | common | {"event": "abandoned"}))
        exp.abandoned += 1
    else:
        chain.append(
            b.api("/v1/calls/events", base | common | {"event": "answered", "agent_id": "a1"})
        )
        done = end + timedelta(minutes=3)
        chain.append(
            b.api(
                "/v1/calls/events",
                base
                | {
                    "event": "completed",
                    "occurred_at": done.isoformat(),
                    "agent_id": "a1",
                    "offered_at": offered.isoformat(),
                    "talk_ms": 150_000,
                    "wrap_ms": 30_000,
                },
            )
        )
        exp.answered += 1
    return chain


# ---------------------------------------------------------------- sending like a provider


async def send(
    client: httpx.AsyncClient, req: Request, tally: Tally, *, give_up_s: float = 900
) -> bool:
    """POST until a 2xx, retrying connection errors, timeouts, 429 and 5xx with backoff."""
    deadline = time.monotonic() + give_up_s
    delay = 0.2
    while True:
        tally.sent += 1
        try:
            resp = await client.post(req.path, content=req.body, headers=req.headers)
            code = str(resp.status_code)
        except httpx.HTTPError as exc:
            resp, code = None, type(exc).__name__
        tally.codes[code] += 1
        if resp is not None and resp.status_code < 300:
            tally.accepted += 1
            return True
        if resp is not None and 400 <= resp.status_code < 500 and resp.status_code != 429:
            tally.refused.append(f"{req.path} {resp.status_code} {resp.text[:300]}")
            return False
        if time.monotonic() > deadline:
            tally.refused.append(f"{req.path} gave up after {give_up_s} s (last {code})")
            return False
        tally.retries += 1
        retry_after = resp.headers.get("retry-after") if resp is not None else None
        wait = min(float(retry_after), 5.0) if retry_after and retry_after.isdigit() else delay
        await asyncio.sleep(wait * (0.5 + random.random()))
        delay = min(delay * 2, 3.0)


async def push(
    client: httpx.AsyncClient,
    work: Workload,
    *,
    concurrency: int,
    copies: int = 1,
    tally: Tally | None = None,
) -> Tally:
    """Send every chain (requests of a chain in order); webhooks `copies` times concurrently."""
    tally = Tally() if tally is None else tally
    pending = list(reversed(work.chains))

    async def worker() -> None:
        while pending:
            chain = pending.pop()
            for unsigned in chain:
                req = unsigned.signed()
                n = copies if req.webhook else 1
                await asyncio.gather(*(send(client, req, tally) for _ in range(n)))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


async def publish_adapter(bootstrap: str, events: list[tuple[bytes, bytes]], tally: Tally) -> None:
    """An adapter publishing to sb.inbound.v1: each record re-sent until acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await _until_started(producer)
    try:
        for key, value in events:
            while True:
                tally.sent += 1
                try:
                    await asyncio.wait_for(
                        await producer.send(INBOUND.name, value, key=key), timeout=30
                    )
                    tally.accepted += 1
                    tally.codes["kafka-ack"] += 1
                    break
                except Exception as exc:  # noqa: BLE001 - broker restarting: send again
                    tally.codes[type(exc).__name__] += 1
                    tally.retries += 1
                    await asyncio.sleep(1)
    finally:
        await producer.stop()


async def _until_started(producer: AIOKafkaProducer) -> None:
    for _ in range(120):
        try:
            await producer.start()
            return
        except Exception:  # noqa: BLE001 - broker restarting
            await asyncio.sleep(1)
    await producer.start()


def run_id() -> str:
    return uuid.uuid4().hex[:8]
