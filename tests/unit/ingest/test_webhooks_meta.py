"""WhatsApp Cloud API and Messenger webhooks: handshake, signatures, batches, receipts, duplicates."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any

import pytest

from sbcontracts.topics import RECEIPTS
from tests.unit.ingest import samples
from tests.unit.ingest.conftest import Harness, add_channel

SECRET = "meta-app-secret"
META_SECRETS = {"app_secret": SECRET, "verify_token": "verify-me"}


async def _post(h: Harness, path: str, raw: bytes, *, secret: str = SECRET) -> int:
    headers = {
        "content-type": "application/json",
        "x-hub-signature-256": samples.hub_signature(secret, raw),
    }
    r = await h.client.post(path, content=raw, headers=headers)
    return r.status_code


@pytest.mark.parametrize("kind", ["whatsapp", "messenger"])
async def test_handshake_echoes_challenge_only_with_the_verify_token(
    harness: Harness, kind: str
) -> None:
    path = await add_channel(harness, kind, META_SECRETS)
    ok = await harness.client.get(
        path,
        params={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me",
            "hub.challenge": "1158201444",
        },
    )
    bad = await harness.client.get(
        path, params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    )
    assert (ok.status_code, ok.text) == (200, "1158201444")
    assert bad.status_code == 403


async def test_whatsapp_batch_every_message_normalised_in_its_language(harness: Harness) -> None:
    path = await add_channel(harness, "whatsapp", META_SECRETS, default_region="PL")
    msgs = [samples.wa_text(f"wamid.{lang}", text) for lang, text in samples.TEXTS.items()]
    raw = samples.whatsapp(msgs)
    assert await _post(harness, path, raw) == 200
    events = [e["data"] for e in await harness.events()]
    assert [e["language"] for e in events] == ["pl", "ru", "ro", "en"]
    first = events[0]
    assert first["sender"] == {"kind": "phone", "value": "+48600100200"}
    assert first["display_name"] == "Józef Wiśniewski" and first["inbox"] == "+48221234567"
    assert first["provider"] == "whatsapp_cloud" and first["provider_message_id"] == "wamid.pl"
    assert first["provider_timestamp"].startswith("2024-11-22T08:00:00")


async def test_whatsapp_every_entry_and_change_is_processed(harness: Harness) -> None:
    path = await add_channel(harness, "whatsapp", META_SECRETS)
    one = samples.whatsapp([samples.wa_text("wamid.1", samples.TEXTS["en"])])
    two = samples.whatsapp([samples.wa_text("wamid.2", samples.TEXTS["ro"])])
    import json

    doc = json.loads(one)
    doc["entry"].append(json.loads(two)["entry"][0])
    doc["entry"][0]["changes"].append(json.loads(two)["entry"][0]["changes"][0] | {})
    doc["entry"][0]["changes"][1]["value"]["messages"][0]["id"] = "wamid.3"
    raw = json.dumps(doc).encode()
    assert await _post(harness, path, raw) == 200
    ids = sorted(e["data"]["provider_message_id"] for e in await harness.events())
    assert ids == ["wamid.1", "wamid.2", "wamid.3"]


async def test_whatsapp_redelivery_creates_one_message(harness: Harness) -> None:
    path = await add_channel(harness, "whatsapp", META_SECRETS)
    raw = samples.whatsapp([samples.wa_text("wamid.dup", samples.TEXTS["pl"])])
    results = await asyncio.gather(*[_post(harness, path, raw) for _ in range(5)])
    assert results == [200] * 5
    assert await _post(harness, path, raw) == 200
    assert len(await harness.events()) == 1


async def test_whatsapp_statuses_become_receipts_once(harness: Harness) -> None:
    path = await add_channel(harness, "whatsapp", META_SECRETS)
    statuses: list[dict[str, Any]] = [
        {
            "id": "wamid.out1",
            "status": "delivered",
            "timestamp": "1732262500",
            "recipient_id": "48600100200",
        },
        {
            "id": "wamid.out2",
            "status": "failed",
            "timestamp": "1732262501",
            "recipient_id": "48600100200",
            "errors": [{"code": 131051, "title": "Message type unknown"}],
        },
    ]
    raw = samples.whatsapp([], statuses)
    assert await _post(harness, path, raw) == 200
    assert await _post(harness, path, raw) == 200
    receipts = sorted(
        (e["data"] for e in await harness.events(RECEIPTS.name)),
        key=lambda r: r["provider_message_id"],
    )
    assert [(r["provider_message_id"], r["status"]) for r in receipts] == [
        ("wamid.out1", "delivered"),
        ("wamid.out2", "failed"),
    ]
    assert receipts[1]["error_code"] == "131051"
    assert receipts[0]["recipient"]["value"] == "+48600100200"
    assert await harness.events() == []


@pytest.mark.parametrize("kind", ["whatsapp", "messenger"])
async def test_bad_or_missing_signature_publishes_nothing(harness: Harness, kind: str) -> None:
    path = await add_channel(harness, kind, META_SECRETS)
    raw = (
        samples.whatsapp([samples.wa_text("wamid.x", "hi")])
        if kind == "whatsapp"
        else samples.messenger([samples.ms_text("m_x", "hi")])
    )
    assert await _post(harness, path, raw, secret="wrong") == 401
    tampered = raw.replace(b"hi", b"ho")
    sig = samples.hub_signature(SECRET, raw)
    r = await harness.client.post(
        path,
        content=tampered,
        headers={"content-type": "application/json", "x-hub-signature-256": sig},
    )
    missing = await harness.client.post(
        path, content=raw, headers={"content-type": "application/json"}
    )
    assert (r.status_code, missing.status_code) == (401, 401)
    assert await harness.events() == []


@pytest.mark.parametrize("kind", ["whatsapp", "messenger"])
async def test_wrong_tenant_unknown_channel_type_and_malformed(harness: Harness, kind: str) -> None:
    path = await add_channel(harness, kind, META_SECRETS)
    raw = b'{"object": "page", "entry": [{"id": 1, "messaging": "nope"}]'
    other_tenant = path.replace("/acme/", "/globex/")
    assert await _post(harness, other_tenant, raw) == 404
    assert await _post(harness, path.rsplit("/", 1)[0] + "/unknown", raw) == 404
    assert await _post(harness, path, raw) == 400
    assert (
        await _post(
            harness,
            path,
            b'{"object": "page", "entry": [{"id": "1", "messaging": [{"sender": 5}]}]}',
        )
        == 400
    )
    wrong_type = await harness.client.post(
        path,
        content=raw,
        headers={
            "content-type": "text/plain",
            "x-hub-signature-256": samples.hub_signature(SECRET, raw),
        },
    )
    assert wrong_type.status_code == 415
    assert await harness.events() == []


@pytest.mark.parametrize("millis", [-1, 253402300800000, 10**17])
async def test_a_timestamp_outside_1970_to_9000_is_refused(harness: Harness, millis: int) -> None:
    """Named in the problem body (not an event model's "1 errors"); nothing is published."""
    path = await add_channel(harness, "messenger", META_SECRETS)
    raw = samples.messenger([samples.ms_text("m_1", "hello") | {"timestamp": millis}])
    signed = {
        "content-type": "application/json",
        "x-hub-signature-256": samples.hub_signature(SECRET, raw),
    }
    refused = await harness.client.post(path, content=raw, headers=signed)
    assert (refused.status_code, refused.json()["title"]) == (400, "Malformed payload")
    assert "timestamp" in refused.json()["detail"]
    assert await harness.events() == []
    fine = samples.messenger([samples.ms_text("m_2", "hello")])
    assert await _post(harness, path, fine) == 200


async def test_messenger_messages_scoped_to_page_and_echoes_skipped(harness: Harness) -> None:
    path = await add_channel(harness, "messenger", META_SECRETS)
    echo = samples.ms_text("m_echo", "our own reply") | {}
    echo["message"] = {"mid": "m_echo", "text": "x", "is_echo": True}
    delivery = {
        "sender": {"id": "6543210987654321"},
        "recipient": {"id": "1234567890"},
        "timestamp": 1732262400000,
        "delivery": {"mids": ["m_out1"], "watermark": 1732262400000},
    }
    raw = samples.messenger([samples.ms_text("m_1", samples.TEXTS["ru"]), echo, delivery])
    assert await _post(harness, path, raw) == 200
    events = [e["data"] for e in await harness.events()]
    assert len(events) == 1
    assert events[0]["sender"] == {
        "kind": "messenger",
        "value": "6543210987654321",
        "scope": "1234567890",
    }
    assert events[0]["language"] == "ru"
    receipts = await harness.events(RECEIPTS.name)
    assert [r["data"]["provider_message_id"] for r in receipts] == ["m_out1"]


async def test_oversized_webhook_is_413_and_publishes_nothing(tmp_path: object) -> None:
    from pathlib import Path

    from tests.unit.ingest.conftest import start_harness

    async for h in start_harness(Path(str(tmp_path)), ingest_max_body_bytes=2048):
        path = await add_channel(h, "whatsapp", META_SECRETS)
        raw = samples.whatsapp([samples.wa_text("wamid.big", "x" * 5000)])
        assert await _post(h, path, raw) == 413
        assert await h.events() == []


async def test_one_unusable_sender_does_not_block_the_rest_of_the_batch(harness: Harness) -> None:
    path = await add_channel(harness, "whatsapp", META_SECRETS)
    bad = samples.wa_text("wamid.bad", "hi", sender="not-a-number")
    raw = samples.whatsapp([bad, samples.wa_text("wamid.good", samples.TEXTS["en"])])
    headers = {
        "content-type": "application/json",
        "x-hub-signature-256": samples.hub_signature(SECRET, raw),
    }
    r = await harness.client.post(path, content=raw, headers=headers)
    assert r.status_code == 200
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 1)
    assert [e["data"]["provider_message_id"] for e in await harness.events()] == ["wamid.good"]


async def test_whatsapp_media_recorded_as_metadata_with_name_type_and_hash(
    harness: Harness,
) -> None:
    """WhatsApp gives a media id, MIME type, SHA-256 (hex or base64) and a document's filename,
    never the size (0 = not given); the bytes stay with Meta (fetched by media id if needed)."""
    path = await add_channel(harness, "whatsapp", META_SECRETS, default_region="PL")
    digest = hashlib.sha256(b"faktura").digest()
    document = {
        "from": "48600100200",
        "id": "wamid.doc",
        "timestamp": "1732262400",
        "type": "document",
        "document": {
            "caption": "Faktura za zamówienie 10045 — proszę o korektę",
            "filename": "faktura-10045.pdf",
            "mime_type": "application/pdf",
            "sha256": base64.b64encode(digest).decode(),
            "id": "1013859600285441",
        },
    }
    image = {
        "from": "48600100200",
        "id": "wamid.img",
        "timestamp": "1732262401",
        "type": "image",
        "image": {"mime_type": "image/jpeg", "sha256": digest.hex().upper(), "id": "5551"},
    }
    assert await _post(harness, path, samples.whatsapp([document, image])) == 200
    events = [e["data"] for e in await harness.events()]
    assert [e["attachments"] for e in events] == [
        [
            {
                "name": "faktura-10045.pdf",
                "content_type": "application/pdf",
                "size": 0,
                "sha256": digest.hex(),
                "url": "whatsapp-media:1013859600285441",
            }
        ],
        [
            {
                "content_type": "image/jpeg",
                "size": 0,
                "sha256": digest.hex(),
                "url": "whatsapp-media:5551",
            }
        ],
    ]
    assert events[0]["text"].startswith("Faktura za zamówienie") and events[0]["language"] == "pl"


async def test_messenger_attachments_keep_what_the_payload_gives(harness: Harness) -> None:
    """Messenger gives a category and a CDN URL only: a file's name (and MIME type) come from
    the URL, an image is the media range image/*; no size, no hash."""
    path = await add_channel(harness, "messenger", META_SECRETS)
    event = samples.ms_text("m_att", "")
    event["message"]["attachments"] = [
        {
            "type": "file",
            "payload": {"url": "https://cdn.fbsbx.com/v/t59/f%C4%83ctur%C4%83.pdf?x=1"},
        },
        {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1/123_n.jpg"}},
        {"type": "file", "payload": {"url": "http://[broken/x.pdf"}},
    ]
    assert await _post(harness, path, samples.messenger([event])) == 200
    (data,) = [e["data"] for e in await harness.events()]
    got = [
        (a.get("name"), a["content_type"], a["size"], a.get("sha256")) for a in data["attachments"]
    ]
    assert got == [
        ("făctură.pdf", "application/pdf", 0, None),
        (None, "image/*", 0, None),
        (None, "application/octet-stream", 0, None),
    ]
