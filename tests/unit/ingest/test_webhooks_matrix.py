"""Every provider: concurrent duplicates, wrong tenant, oversized, malformed and bad signature."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from sbcontracts.topics import CALLS
from tests.unit.ingest import samples
from tests.unit.ingest.conftest import Harness, add_channel, start_harness

LIMIT = 8192
Request = tuple[bytes, dict[str, str]]
SECRETS = {
    "whatsapp": {"app_secret": "a", "verify_token": "v"},
    "messenger": {"app_secret": "a", "verify_token": "v"},
    "telegram": {"secret_token": "tg"},
    "twilio_sms": {"auth_token": "tw"},
    "mailgun": {"signing_key": "mg"},
    "email": {"signing_secret": "em"},
}


def _meta(raw: bytes, secret: str = "a") -> Request:
    return raw, {
        "content-type": "application/json",
        "x-hub-signature-256": samples.hub_signature(secret, raw),
    }


def _twilio(path: str, params: dict[str, str], token: str = "tw") -> Request:
    sig = samples.twilio_sign(token, f"http://ingest.test{path}", params)
    return urlencode(params).encode(), {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": sig,
    }


def _mailgun(
    text: str, key: str = "mg", n: int = 1, *, over: dict[str, str] | None = None
) -> Request:
    stamp, token = str(int(time.time())), "tok-" + hashlib.sha256(text.encode()).hexdigest()[:20]
    fields = {
        "from": "Ana <ana@example.ro>",
        "recipient": "ajutor@magazin.ro",
        "subject": "Comanda",
        "body-plain": text,
        "Message-Id": f"<mx-{n}@example.ro>",
        "timestamp": stamp,
        "token": token,
        "signature": samples.mailgun_signature(key, stamp, token),
    } | (over or {})
    return urlencode(fields).encode(), {"content-type": "application/x-www-form-urlencoded"}


def _email(text: str, secret: str = "em", n: int = 1) -> Request:
    raw = (
        f"From: Ann <ann@example.com>\r\nTo: help@shop.example\r\nMessage-ID: <e-{n}@x>\r\n"
        f"Subject: Parcel\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()
    return _signed_email(raw, secret)


def _signed_email(raw: bytes, secret: str = "em") -> Request:
    sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"content-type": "message/rfc822", "x-switchboard-signature-256": sig}


def valid(kind: str, path: str, text: str, n: int = 1) -> Request:
    """A correctly signed request of `kind` carrying one message with `text` (provider id `n`)."""
    if kind == "whatsapp":
        return _meta(samples.whatsapp([samples.wa_text(f"wamid.m{n}", text)]))
    if kind == "messenger":
        return _meta(samples.messenger([samples.ms_text(f"m_m{n}", text)]))
    if kind == "telegram":
        return samples.telegram(6 + n, 6 + n, text), {
            "content-type": "application/json",
            "x-telegram-bot-api-secret-token": "tg",
        }
    if kind == "twilio_sms":
        return _twilio(path, samples.twilio_sms(f"SM{n:032d}", text))
    if kind == "mailgun":
        return _mailgun(text, n=n)
    return _email(text, n=n)


def malformed(kind: str, path: str) -> Request:
    """A correctly signed request whose payload is not the provider's format."""
    if kind in ("whatsapp", "messenger"):
        return _meta(b'{"object": "page", "entry": 5}' if kind == "messenger" else b"[")
    if kind == "telegram":
        return b'{"update_id": -1}', {
            "content-type": "application/json",
            "x-telegram-bot-api-secret-token": "tg",
        }
    if kind == "twilio_sms":
        return _twilio(path, {"Body": "no sid, no sender"})
    if kind == "mailgun":
        return _mailgun("x", over={"from": "nobody"})
    return _signed_email(b"Subject: no sender\r\n\r\nbody")


def forged(kind: str, path: str, text: str) -> Request:
    """A request of `kind` signed with the wrong secret."""
    if kind in ("whatsapp", "messenger"):
        raw, _ = valid(kind, path, text)
        return _meta(raw, secret="wrong")
    if kind == "telegram":
        raw, headers = valid(kind, path, text)
        return raw, headers | {"x-telegram-bot-api-secret-token": "wrong"}
    if kind == "twilio_sms":
        return _twilio(path, samples.twilio_sms("SM" + "9" * 32, text), token="wrong")
    if kind == "mailgun":
        return _mailgun(text, key="wrong")
    return _email(text, secret="wrong")


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in start_harness(tmp_path, ingest_max_body_bytes=LIMIT):
        yield h


async def _send(h: Harness, path: str, request: Request) -> int:
    raw, headers = request
    return (await h.client.post(path, content=raw, headers=headers)).status_code


KINDS = list(SECRETS)


@pytest.mark.parametrize("kind", KINDS)
async def test_concurrent_redeliveries_make_one_event(small: Harness, kind: str) -> None:
    path = await add_channel(small, kind, SECRETS[kind])
    request = valid(kind, path, samples.TEXTS["en"])
    codes = await asyncio.gather(*[_send(small, path, request) for _ in range(5)])
    assert codes == [200] * 5
    assert len(await small.events()) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_rejections_publish_nothing(small: Harness, kind: str) -> None:
    path = await add_channel(small, kind, SECRETS[kind])
    text = samples.TEXTS["pl"]
    assert await _send(small, path.replace("/acme/", "/globex/"), valid(kind, path, text)) == 404
    assert await _send(small, path, forged(kind, path, text)) == 401
    assert await _send(small, path, valid(kind, path, text * 200)) == 413
    assert await _send(small, path, malformed(kind, path)) == 400
    assert await small.events() == []


SENDER_KIND = {"whatsapp": "phone", "messenger": "messenger", "telegram": "telegram"}
SENDER_KIND |= {"twilio_sms": "phone", "mailgun": "email", "email": "email"}


@pytest.mark.parametrize("kind", KINDS)
async def test_every_provider_normalises_each_language(small: Harness, kind: str) -> None:
    path = await add_channel(small, kind, SECRETS[kind], default_region="RO")
    for n, text in enumerate(samples.TEXTS.values(), start=1):
        assert await _send(small, path, valid(kind, path, text, n)) == 200
    events = [e["data"] for e in await small.events()]
    assert [e["language"] for e in events] == ["pl", "ru", "ro", "en"]
    assert {e["sender"]["kind"] for e in events} == {SENDER_KIND[kind]}
    assert len({e["provider_message_id"] for e in events}) == 4
    assert [e["text"] for e in events] == list(samples.TEXTS.values())


async def test_twilio_voice_duplicates_and_rejections(small: Harness) -> None:
    """Voice status callbacks: the same matrix as the message providers, on the calls topic."""
    path = await add_channel(small, "twilio_voice", {"auth_token": "tw"}, default_region="PL")
    call = {
        "CallSid": "CA" + "8" * 32,
        "CallStatus": "ringing",
        "From": "+48221112233",
        "To": "+48220000000",
        "Timestamp": "Fri, 22 Nov 2024 08:00:00 +0000",
    }
    codes = await asyncio.gather(*[_send(small, path, _twilio(path, call)) for _ in range(5)])
    assert codes == [200] * 5
    assert len(await small.events(CALLS.name)) == 1
    other = {**call, "CallSid": "CA" + "9" * 32}
    assert await _send(small, path.replace("/acme/", "/globex/"), _twilio(path, other)) == 404
    assert await _send(small, path, _twilio(path, other, token="wrong")) == 401
    assert await _send(small, path, _twilio(path, other | {"Pad": "x" * LIMIT})) == 413
    assert await _send(small, path, _twilio(path, {"CallStatus": "ringing"})) == 400
    assert await _send(small, path, _twilio(path, other | {"Timestamp": "yesterday"})) == 400
    assert len(await small.events(CALLS.name)) == 1
