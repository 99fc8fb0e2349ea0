"""Telegram and Twilio webhooks: secrets, signatures over URL + params, receipts, calls, duplicates."""

from __future__ import annotations

import asyncio
import hashlib
import json
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


async def test_telegram_out_of_order_updates_carry_update_id_and_stale_redelivery_is_dropped(
    harness: Harness,
) -> None:
    """With several webhook connections Telegram may deliver update 12 before 11; each event
    carries its update_id as `provider_sequence` so consumers order a chat by it."""
    path = await add_channel(harness, "telegram", TG, bot_id="7000000001")
    later = samples.telegram(12, 1366, "Посылка пришла, спасибо!")
    earlier = samples.telegram(11, 1365, samples.TEXTS["ru"])
    assert [await _telegram(harness, path, raw) for raw in (later, earlier, later, earlier)] == [
        200
    ] * 4
    events = [e["data"] for e in await harness.events()]
    assert [(e["provider_sequence"], e["provider_message_id"]) for e in events] == [
        (12, "111111111:1366"),
        (11, "111111111:1365"),
    ]
    in_order = sorted(events, key=lambda e: e["provider_sequence"])
    assert [e["provider_message_id"] for e in in_order] == ["111111111:1365", "111111111:1366"]


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
    assert r.status_code == 401  # a JSON body must come with bodySHA256 in the signed URL
    r = await harness.client.post(
        path,
        content=urlencode(params),
        headers={"content-type": "text/plain", "x-twilio-signature": signed},
    )
    assert r.status_code == 415
    assert await harness.events() == []


async def _twilio_json(h: Harness, path: str, body: bytes, *, token: str = TOKEN) -> int:
    """A JSON-bodied Twilio webhook: bodySHA256 in the URL, the signature over the URL alone."""
    query = f"?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = samples.twilio_sign(token, f"http://ingest.test{path}{query}", {})
    headers = {"content-type": "application/json", "x-twilio-signature": signature}
    return (await h.client.post(path + query, content=body, headers=headers)).status_code


async def test_twilio_json_body_signed_with_body_sha256_accepted_once(harness: Harness) -> None:
    path = await add_channel(harness, "twilio_sms", {"auth_token": TOKEN}, default_region="PL")
    params = samples.twilio_sms("SM" + "6" * 32, samples.TEXTS["pl"], sender="+48 600 100 200")
    body = json.dumps(params, ensure_ascii=False).encode()
    assert await _twilio_json(harness, path, body) == 200
    assert await _twilio_json(harness, path, body) == 200  # Twilio's retry: a duplicate
    events = [e["data"] for e in await harness.events()]
    assert len(events) == 1
    assert events[0]["sender"]["value"] == "+48600100200" and events[0]["language"] == "pl"


async def test_twilio_json_body_tampered_or_wrongly_signed_is_refused(harness: Harness) -> None:
    path = await add_channel(harness, "twilio_sms", {"auth_token": TOKEN})
    body = json.dumps(samples.twilio_sms("SM" + "7" * 32, "hello there")).encode()
    assert await _twilio_json(harness, path, body, token="other") == 401
    query = f"?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = samples.twilio_sign(TOKEN, f"http://ingest.test{path}{query}", {})
    headers = {"content-type": "application/json", "x-twilio-signature": signature}
    tampered = body.replace(b"hello", b"HELLO")
    r = await harness.client.post(path + query, content=tampered, headers=headers)
    assert r.status_code == 401  # the URL is authentic, the body is not the one it hashes
    r = await harness.client.post(path + query, content=b"{not json", headers=headers)
    assert r.status_code == 401  # verified before parsing: a forged body never reaches a parser
    assert await _twilio_json(harness, path, b"[1, 2]") == 400
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
