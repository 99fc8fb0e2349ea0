"""Every provider in pl, ru, ro, en over real Kafka and PostgreSQL, redelivered concurrently."""

from __future__ import annotations

import asyncio

import pytest

from sbcontracts.topics import MESSAGES
from tests.integration.bus_fixtures import eventually
from tests.integration.ingest.conftest import Running
from tests.unit.ingest import samples
from tests.unit.ingest.test_webhooks_matrix import KINDS, SECRETS, SENDER_KIND, valid

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def _channel(running: Running, kind: str) -> str:
    body = {
        "kind": kind,
        "name": kind,
        "settings": {"default_region": "RO"},
        "secrets": SECRETS[kind],
    }
    r = await running.client.post("/v1/channels", json=body, headers=running.token())
    assert r.status_code == 201, r.text
    return str(r.json()["webhook_path"])


async def test_every_provider_and_language_lands_once_on_kafka(running: Running) -> None:
    sends = []
    for kind in KINDS:
        path = await _channel(running, kind)
        for n, text in enumerate(samples.TEXTS.values(), start=1):
            raw, headers = valid(kind, path, text, n)
            # each delivery three times at once: the group commit and the unique keys on
            # PostgreSQL must still make one message of it
            sends += [running.client.post(path, content=raw, headers=headers) for _ in range(3)]
    answers = await asyncio.gather(*sends)
    assert {a.status_code for a in answers} == {200}
    expected = len(KINDS) * len(samples.TEXTS)

    async def all_on_kafka() -> bool:
        return len(await running.ours(MESSAGES.name)) >= expected

    await eventually(all_on_kafka, limit_s=60)
    await asyncio.sleep(1.0)  # give a wrongly emitted second copy the time to show up
    events = [e["data"] for e in await running.ours(MESSAGES.name)]
    assert len(events) == expected
    for kind in KINDS:
        provider_events = [e for e in events if e["sender"]["kind"] == SENDER_KIND[kind]]
        assert provider_events, kind
    by_language: dict[str, set[str]] = {}
    for e in events:
        by_language.setdefault(e["language"], set()).add(e["provider"])
    assert sorted(by_language) == ["en", "pl", "ro", "ru"]
    providers = {"whatsapp_cloud", "messenger", "telegram", "twilio", "mailgun", "email"}
    assert all(p == providers for p in by_language.values()), by_language
