"""The generic API channel: accepted once, normalised, readable only by its tenant."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.ingest.conftest import Harness


def _body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": "chat-1",
        "channel": "webchat",
        "sender": {"kind": "email", "value": "Anna.Kowalska@Example.PL"},
        "display_name": "Anna Kowalska",
        "text": "Dzień dobry, moja paczka nie dotarła. Kiedy mogę się jej spodziewać?",
        "conversation_id": "conv-9",
    }
    body.update(over)
    return body


async def test_api_message_is_normalised_and_published_once(harness: Harness) -> None:
    r = await harness.client.post("/v1/messages", json=_body(), headers=harness.token())
    assert r.status_code == 201, r.text
    events = await harness.events()
    assert len(events) == 1
    data = events[0]["data"]
    assert data["message_id"] == r.json()["message_id"]
    assert data["sender"] == {"kind": "email", "value": "anna.kowalska@example.pl"}
    assert data["language"] == "pl" and data["channel"] == "webchat"
    assert data["thread"]["conversation_id"] == "conv-9"
    assert events[0]["tenantid"] == "acme"


async def test_same_external_id_returns_same_message_without_second_event(
    harness: Harness,
) -> None:
    first = await harness.client.post("/v1/messages", json=_body(), headers=harness.token())
    again = await harness.client.post(
        "/v1/messages", json=_body(text="different"), headers=harness.token()
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"message_id": first.json()["message_id"], "duplicate": True}
    assert len(await harness.events()) == 1


async def test_idempotency_key_replays_and_refuses_another_body(harness: Harness) -> None:
    headers = {**harness.token(), "Idempotency-Key": "k-1"}
    first = await harness.client.post("/v1/messages", json=_body(), headers=headers)
    same = await harness.client.post("/v1/messages", json=_body(), headers=headers)
    other = await harness.client.post(
        "/v1/messages", json=_body(external_id="chat-2"), headers=headers
    )
    assert same.status_code == 200 and same.json()["message_id"] == first.json()["message_id"]
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert len(await harness.events()) == 1


async def test_concurrent_duplicates_create_one_message_and_one_event(harness: Harness) -> None:
    headers = harness.token()
    answers = await asyncio.gather(
        *[harness.client.post("/v1/messages", json=_body(), headers=headers) for _ in range(8)]
    )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["message_id"] for a in answers}) == 1
    assert len(await harness.events()) == 1


async def test_get_message_is_tenant_scoped(harness: Harness) -> None:
    r = await harness.client.post("/v1/messages", json=_body(), headers=harness.token())
    url = f"/v1/messages/{r.json()['message_id']}"
    own = await harness.client.get(url, headers=harness.token())
    other = await harness.client.get(url, headers=harness.token("globex"))
    assert own.status_code == 200 and own.json()["text"].startswith("Dzień dobry")
    assert other.status_code == 404


async def test_scopes_are_enforced(harness: Harness) -> None:
    read_only = harness.token(scopes=("messages:read",))
    r = await harness.client.post("/v1/messages", json=_body(), headers=read_only)
    assert r.status_code == 403
    assert (await harness.client.post("/v1/messages", json=_body())).status_code == 401
    assert await harness.events() == []


async def test_invalid_sender_and_payload_are_problems(harness: Harness) -> None:
    bad_email = _body(sender={"kind": "email", "value": "not-an-address"})
    r = await harness.client.post("/v1/messages", json=bad_email, headers=harness.token())
    assert r.status_code == 400
    r = await harness.client.post(
        "/v1/messages",
        content=b"{not json",
        headers={**harness.token(), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert await harness.events() == []


async def test_national_phone_uses_region(harness: Harness) -> None:
    body = _body(
        sender={"kind": "phone", "value": "0721 234 567"},
        region="RO",
        text="Bună ziua, unde este comanda mea? Mulțumesc frumos.",
    )
    r = await harness.client.post("/v1/messages", json=body, headers=harness.token())
    assert r.status_code == 201
    data = (await harness.events())[0]["data"]
    assert data["sender"]["value"] == "+40721234567" and data["language"] == "ro"
