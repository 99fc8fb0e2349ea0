"""Channel configuration: per tenant, secrets write-only, webhook path returned."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from tests.unit.ingest import samples
from tests.unit.ingest.conftest import Harness, add_channel, start_harness

WHATSAPP: dict[str, Any] = {
    "kind": "whatsapp",
    "name": "WhatsApp PL",
    "settings": {"phone_number_id": "106540352242922", "default_region": "PL"},
    "secrets": {"app_secret": "s3cr3t-app", "verify_token": "vt-123"},
}


async def test_created_channel_never_returns_its_secrets(
    harness: Harness, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # INFO: a database driver at DEBUG prints bound parameters (all data, not only secrets).
    caplog.set_level(logging.INFO)
    r = await harness.client.post("/v1/channels", json=WHATSAPP, headers=harness.token())
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["secrets_set"] == ["app_secret", "verify_token"]
    assert body["webhook_path"] == f"/v1/webhooks/acme/whatsapp/{body['id']}"
    listed = await harness.client.get("/v1/channels", headers=harness.token())
    got = await harness.client.get(f"/v1/channels/{body['id']}", headers=harness.token())
    for shown in (r.text, listed.text, got.text, caplog.text, capsys.readouterr().out):
        assert "s3cr3t-app" not in shown and "vt-123" not in shown


async def test_patch_rotates_one_secret_and_keeps_the_others(harness: Harness) -> None:
    r = await harness.client.post("/v1/channels", json=WHATSAPP, headers=harness.token())
    url = f"/v1/channels/{r.json()['id']}"
    p = await harness.client.patch(
        url,
        json={"secrets": {"app_secret": "new"}, "settings": {"default_region": "RO"}},
        headers=harness.token(),
    )
    assert p.status_code == 200
    assert p.json()["secrets_set"] == ["app_secret", "verify_token"]
    assert p.json()["settings"]["default_region"] == "RO"
    assert p.json()["settings"]["phone_number_id"] == "106540352242922"


async def test_channels_are_per_tenant(harness: Harness) -> None:
    r = await harness.client.post("/v1/channels", json=WHATSAPP, headers=harness.token())
    other = harness.token("globex")
    assert (
        await harness.client.get(f"/v1/channels/{r.json()['id']}", headers=other)
    ).status_code == 404
    assert (await harness.client.get("/v1/channels", headers=other)).json() == []
    patch = await harness.client.patch(
        f"/v1/channels/{r.json()['id']}", json={"name": "x"}, headers=other
    )
    assert patch.status_code == 404


async def test_channel_without_its_webhook_secrets_is_refused(harness: Harness) -> None:
    body = {**WHATSAPP, "secrets": {"app_secret": "x"}}
    r = await harness.client.post("/v1/channels", json=body, headers=harness.token())
    assert r.status_code == 422 and r.json()["missing"] == ["verify_token"]
    bad_kind = {**WHATSAPP, "kind": "pigeon"}
    assert (
        await harness.client.post("/v1/channels", json=bad_kind, headers=harness.token())
    ).status_code == 422


async def test_secrets_sealed_at_rest_when_a_key_is_set(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    async for h in start_harness(tmp_path, ingest_secrets_key=key):
        path = await add_channel(h, "telegram", {"secret_token": "tg-very-secret"})
        runtime = next(iter(h.app.state.runtimes.values()))
        async with runtime.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT secrets FROM channels"))).scalar_one()
        assert "tg-very-secret" not in str(stored) and "sealed" in str(stored)
        raw = samples.telegram(1, 1, "hi")
        headers = {
            "content-type": "application/json",
            "x-telegram-bot-api-secret-token": "tg-very-secret",
        }
        assert (await h.client.post(path, content=raw, headers=headers)).status_code == 200
