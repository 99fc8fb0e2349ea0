"""Telegram and Twilio webhooks: secrets, signatures over URL + params, receipts, calls, duplicates."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from sbcontracts.topics import CALLS, RECEIPTS
from tests.unit.ingest import samples
from tests.unit.ingest.conftest import Harness, add_channel

TOKEN = "twilio-auth-token"
TG = {"secret_token": "tg-secret_123"}


async def _telegram(h: Harness, path: str, raw: bytes, secret: str = "tg-secret_123") -> int:
    headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": secret}
    return (await h.client.post(path, content=raw, headers=headers)).status_code


async def test_telegram_message_normalised_and_deduped_by_update(harness: Harness) -> None:
    path = await add_channel(harness, "telegram", TG, bot_id="7000000001")
    raw = samples.telegram(900001, 1365, samples.TEXTS["ru"])
    codes = await asyncio.gather(*[_telegram(harness, path, raw) for _ in range(4)])
    assert codes == [200] * 4
    events = [e["data"] for e in await harness.events()]
    assert len(events) == 1
    data = events[0]
    assert data["sender"] == {"kind": "telegram", "value": "111111111", "scope": "7000000001"}
    assert data["display_name"] == "Иван Петров" and data["language"] == "ru"
    assert data["provider_message_id"] == "111111111:1365"


async def test_telegram_wrong_secret_malformed_and_other_updates(harness: Harness) -> None:
    path = await add_channel(harness, "telegram", TG)
    raw = samples.telegram(1, 1, "hi")
    assert await _telegram(harness, path, raw, secret="nope") == 401
    assert await _telegram(harness, path, b'{"update_id": "x"}') == 400
    assert await _telegram(harness, path, b"[1, 2") == 400
    assert await _telegram(harness, path, b'{"update_id": 5, "edited_message": {}}') == 200
    assert await _telegram(harness, path.replace("/acme/", "/globex/"), raw) == 404
    assert await harness.events() == []


async def _twilio(h: Harness, path: str, params: dict[str, str], token: str = TOKEN) -> int:
    url = f"http://ingest.test{path}"
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": samples.twilio_sign(token, url, params),
    }
    return (await h.client.post(path, content=urlencode(params), headers=headers)).status_code


async def test_twilio_sms_in_romanian_with_national_number(harness: Harness) -> None:
    path = await add_channel(harness, "twilio_sms", {"auth_token": TOKEN}, default_region="RO")
    params = samples.twilio_sms("SM" + "1" * 32, samples.TEXTS["ro"], sender="0721 234 567")
    assert await _twilio(harness, path, params) == 200
    assert await _twilio(harness, path, params) == 200
    events = [e["data"] for e in await harness.events()]
    assert len(events) == 1
    assert events[0]["sender"]["value"] == "+40721234567" and events[0]["language"] == "ro"
    assert events[0]["channel"] == "sms" and events[0]["inbox"] == "+40312345678"


async def test_twilio_bad_signature_and_wrong_content_type(harness: Harness) -> None:
    path = await add_channel(harness, "twilio_sms", {"auth_token": TOKEN})
    params = samples.twilio_sms("SM" + "2" * 32, "hi")
    assert await _twilio(harness, path, params, token="other") == 401
    signed = samples.twilio_sign(TOKEN, f"http://ingest.test{path}", params)
    tampered = {**params, "Body": "changed"}
    r = await harness.client.post(
        path,
        content=urlencode(tampered),
        headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signed},
    )
    assert r.status_code == 401
    r = await harness.client.post(path, json=params, headers={"x-twilio-signature": signed})
    assert r.status_code == 415
    assert await harness.events() == []


async def test_twilio_message_status_callbacks_become_receipts(harness: Harness) -> None:
    path = await add_channel(harness, "twilio_sms", {"auth_token": TOKEN})
    base = {"MessageSid": "SM" + "3" * 32, "AccountSid": "AC" + "0" * 32, "To": "+48600100200"}
    for status in ("queued", "sent", "delivered", "delivered"):
        assert await _twilio(harness, path, {**base, "MessageStatus": status}) == 200
    failed = {
        **base,
        "MessageSid": "SM" + "4" * 32,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
    }
    assert await _twilio(harness, path, failed) == 200
    receipts = [e["data"] for e in await harness.events(RECEIPTS.name)]
    got = sorted((r["provider_message_id"][-1], r["status"]) for r in receipts)
    assert got == [("3", "delivered"), ("3", "sent"), ("4", "failed")]
    assert await harness.events() == []


async def test_twilio_voice_status_callbacks_become_call_events_once(harness: Harness) -> None:
    path = await add_channel(harness, "twilio_voice", {"auth_token": TOKEN}, default_region="PL")
    base = {
        "CallSid": "CA" + "5" * 32,
        "From": "+48221112233",
        "To": "+48220000000",
        "Direction": "inbound",
        "Timestamp": "Fri, 22 Nov 2024 08:00:00 +0000",
    }
    for status, extra in (
        ("ringing", {}),
        ("in-progress", {}),
        ("completed", {"CallDuration": "125"}),
    ):
        assert await _twilio(harness, path, {**base, "CallStatus": status, **extra}) == 200
    assert (
        await _twilio(harness, path, {**base, "CallStatus": "completed", "CallDuration": "125"})
        == 200
    )
    events = await harness.events(CALLS.name)
    assert [e["type"].rsplit(".", 1)[1] for e in events] == ["offered", "answered", "completed"]
    assert events[2]["data"]["talk_ms"] == 125_000
    assert events[0]["data"]["caller"]["value"] == "+48221112233"
