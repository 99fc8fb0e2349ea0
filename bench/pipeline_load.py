"""The pipeline bench's load: a tenant set up like a contact centre, and realistic signed webhooks.

Traffic mix (by message): WhatsApp Cloud API 30 %, Telegram 15 %, Twilio SMS 15 %, Mailgun
email 20 %, the generic messages API (web chat) 20 %; languages pl/ru/ro/en evenly; 30 % of
messages come from a customer who already wrote (same channel and handle), who therefore joins
their open case instead of opening one. Each request carries one message, a valid provider
signature and its own `X-Correlation-Id`, which every service carries onto the events it causes
(message.received → message.attributed → ticket.assigned).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import httpx

from tests.e2e.deployments import LocalStack, Tenant, new_tenant_name
from tests.unit.ingest import samples

LANGS = ("pl", "ru", "ro", "en")
TEXTS = {
    "pl": (
        samples.TEXTS["pl"],
        "Paczka przyszła uszkodzona, karton był zgnieciony. Co mam zrobić?",
        "Chciałbym zwrócić zamówienie, jak wygląda procedura zwrotu?",
    ),
    "ru": (
        samples.TEXTS["ru"],
        "Посылка пришла повреждённой, коробка смята. Что мне делать?",
        "Мне дважды списали оплату за один заказ, верните деньги.",
    ),
    "ro": (
        samples.TEXTS["ro"],
        "Coletul a ajuns deteriorat, cutia era strivită. Ce trebuie să fac?",
        "Aș dori să returnez comanda, cum funcționează returul?",
    ),
    "en": (
        samples.TEXTS["en"],
        "The parcel arrived damaged, the box was crushed. What should I do?",
        "I was charged twice for the same order, please refund me.",
    ),
}
# mobile ranges that phonenumbers accepts as valid, per language's country
PHONE_PREFIX = {"pl": "4860", "ru": "7916", "ro": "40721", "en": "447911"}
PHONE_DIGITS = {"pl": 7, "ru": 7, "ro": 6, "en": 6}
MIX = (("whatsapp", 30), ("telegram", 15), ("twilio_sms", 15), ("mailgun", 20), ("api", 20))
REPEAT_SHARE = 0.3
ANSWER_GRACE_S = 10.0
# channel secrets of the bench tenants
SECRETS = {
    "whatsapp": {"app_secret": "bench-wa-secret", "verify_token": "bench-verify"},
    "telegram": {"secret_token": "bench-tg-secret"},
    "twilio_sms": {"auth_token": "bench-twilio-token"},
    "mailgun": {"signing_key": "bench-mailgun-key"},
}


@dataclass
class Customer:
    """Somebody who writes in: a language, a channel and a handle on it."""

    n: int
    lang: str
    channel: str

    @property
    def phone(self) -> str:
        digits = PHONE_DIGITS[self.lang]
        return PHONE_PREFIX[self.lang] + f"{self.n % 10**digits:0{digits}d}"

    @property
    def email(self) -> str:
        return f"customer{self.n}@example.{ {'en': 'co.uk'}.get(self.lang, self.lang) }"


@dataclass
class Target:
    """A provisioned tenant: its token and webhook paths."""

    tenant: Tenant
    ingest_url: str
    paths: dict[str, str]


async def provision(stack: LocalStack, *, agents: int) -> Target:
    """A fresh tenant with the five channels, a queue per language plus a catch-all, and
    `agents` online agents (capacity 1000 units each, two languages each) so that cases are
    assigned the moment they open: the bench measures the pipeline, not staffing."""
    name = new_tenant_name()
    tenant = Tenant(stack, name, await asyncio.to_thread(stack.token, name))
    paths = {"api": "/v1/messages"}
    for kind, secrets in SECRETS.items():
        body = {"kind": kind, "name": kind, "settings": {}, "secrets": secrets}
        paths[kind] = (await tenant.ok("POST", "/v1/channels", json=body))["webhook_path"]
    await tenant.ok("POST", "/v1/queues/general", json={"name": "General", "position": 99})
    for pos, lang in enumerate(LANGS):
        queue = {"name": f"Support {lang}", "position": pos, "filters": [{"languages": [lang]}]}
        await tenant.ok("POST", f"/v1/queues/support-{lang}", json=queue)

    async def agent(i: int) -> None:
        langs = {LANGS[i % 4]: 5, LANGS[(i + 1) % 4]: 4}
        body = {"name": f"Agent {i}", "languages": langs, "capacity": 1000}
        await tenant.ok("POST", f"/v1/agents/a{i}", json=body)
        await tenant.ok("PUT", f"/v1/agents/a{i}/presence", json={"presence": "online"})

    for start in range(0, agents, 20):
        await asyncio.gather(*[agent(i) for i in range(start, min(agents, start + 20))])
    return Target(tenant, stack.url("ingest"), paths)


def agents_for(rate: float, seconds: float) -> int:
    """Enough capacity for every case this load opens (≤ 25 units each), with headroom."""
    cases = rate * seconds * (1 - REPEAT_SHARE)
    return max(8, int(cases * 25 * 1.3 / 1000) + 4)


@dataclass
class Load:
    """Builds the next request: picks a customer (new or repeat) and signs their message."""

    target: Target
    rng: random.Random = field(default_factory=lambda: random.Random(9))
    customers: list[Customer] = field(default_factory=list)
    next_id: int = 0

    def customer(self) -> tuple[Customer, bool]:
        if self.customers and self.rng.random() < REPEAT_SHARE:
            return self.rng.choice(self.customers), False
        self.next_id += 1
        channel = self.rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        return Customer(self.next_id, self.rng.choice(LANGS), channel), True

    def request(self, c: Customer, corr: str) -> tuple[str, bytes, dict[str, str]]:
        """Path, body and headers of one signed provider webhook (or API call)."""
        text = self.rng.choice(TEXTS[c.lang])
        uid = uuid.uuid4().hex
        headers = {"x-correlation-id": corr}
        path = self.target.paths[c.channel]
        if c.channel == "whatsapp":
            raw = samples.whatsapp([samples.wa_text(f"wamid.{uid}", text, sender=c.phone)])
            sig = samples.hub_signature(SECRETS["whatsapp"]["app_secret"], raw)
            headers |= {"content-type": "application/json", "x-hub-signature-256": sig}
        elif c.channel == "telegram":
            raw = samples.telegram(self.rng.randrange(1, 2**31), 1, text, user_id=100000 + c.n)
            headers |= {
                "content-type": "application/json",
                "x-telegram-bot-api-secret-token": SECRETS["telegram"]["secret_token"],
            }
        elif c.channel == "twilio_sms":
            params = samples.twilio_sms("SM" + uid, text, sender="+" + c.phone)
            token = SECRETS["twilio_sms"]["auth_token"]
            raw = urlencode(params).encode()
            headers |= {
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": samples.twilio_sign(
                    token, self.target.ingest_url + path, params
                ),
            }
        elif c.channel == "mailgun":
            stamp, token = str(int(time.time())), uid + uid
            key = SECRETS["mailgun"]["signing_key"]
            fields = {
                "recipient": "support@shop.example",
                "sender": c.email,
                "from": f"Customer {c.n} <{c.email}>",
                "subject": text[:40],
                "body-plain": text,
                "stripped-text": text,
                "Message-Id": f"<{uid}@example.org>",
                "timestamp": stamp,
                "token": token,
                "signature": samples.mailgun_signature(key, stamp, token),
            }
            raw = urlencode(fields).encode()
            headers |= {"content-type": "application/x-www-form-urlencoded"}
        else:
            body = {
                "channel": "webchat",
                "external_id": uid,
                "sender": {"kind": "email", "value": c.email},
                "text": text,
                "conversation_id": f"chat-{c.n}",
            }
            raw = json.dumps(body, ensure_ascii=False).encode()
            headers |= {
                "content-type": "application/json",
                "authorization": f"Bearer {self.target.tenant.token}",
            }
        return path, raw, headers


@dataclass
class Sent:
    """What the load generator saw of one phase."""

    accepted: dict[str, float] = field(default_factory=dict)  # correlation id → accept time
    opening: set[str] = field(default_factory=set)  # requests of new customers (open a case)
    failures: dict[int, int] = field(default_factory=dict)  # status → n (0 error, -1 too late)
    started: float = 0.0
    ended: float = 0.0


async def send_at_rate(
    client: httpx.AsyncClient, load: Load, sent: Sent, *, rate: float, seconds: float, phase: str
) -> None:
    """Open loop: one request every 1/rate s for `seconds`, whatever the answers take; what was
    accepted accumulates in `sent` as it happens."""
    sent.started = time.time()
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        customer, new = load.customer()
        corr = f"{phase}-{i}"
        path, raw, headers = load.request(customer, corr)
        try:
            resp = await client.post(path, content=raw, headers=headers)
            code = resp.status_code
        except httpx.HTTPError:
            code = 0
        if code < 300:
            sent.accepted[corr] = time.time()
            if new:
                sent.opening.add(corr)
                load.customers.append(customer)  # may write again once accepted
        else:
            sent.failures[code] = sent.failures.get(code, 0) + 1

    t0, total = time.perf_counter(), int(rate * seconds)
    for i in range(total):
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i)))
    # An overloaded ingest would stretch the phase without bound: answers later than
    # ANSWER_GRACE_S after the last request count as failures (-1), so runtime stays bounded.
    _, late = await asyncio.wait(tasks, timeout=ANSWER_GRACE_S)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    if late:
        sent.failures[-1] = len(late)
    sent.ended = time.time()
