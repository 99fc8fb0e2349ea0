"""Our own outage answers 503 with Retry-After (providers retry), never a 2xx without a committed row."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.unit.ingest import samples
from tests.unit.ingest.conftest import add_channel, start_harness


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_database_down_is_503_and_nothing_published(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{_closed_port()}/none"
    async for h in start_harness(tmp_path, database_url=url, migrate_on_start=False):
        body = {"external_id": "x", "sender": {"kind": "webchat", "value": "v"}, "text": "hi"}
        r = await h.client.post("/v1/messages", json=body, headers=h.token())
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert await h.bus.read_topic("sb.messages.v1") == []


async def test_broker_down_still_accepts_durably_and_publishes_once_when_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2xx means a committed outbox row: with the broker down the webhook is still accepted,
    the row waits, and the event is published once when the broker is back."""
    async for h in start_harness(tmp_path):
        path = await add_channel(h, "whatsapp", {"app_secret": "s", "verify_token": "v"})
        raw = samples.whatsapp([samples.wa_text("wamid.outage", samples.TEXTS["ro"])])
        headers = {
            "content-type": "application/json",
            "x-hub-signature-256": samples.hub_signature("s", raw),
        }
        publish = h.bus.publish

        async def broker_down(*_: object, **__: object) -> None:
            raise ConnectionError("broker unreachable")

        monkeypatch.setattr(h.bus, "publish", broker_down)
        assert (await h.client.post(path, content=raw, headers=headers)).status_code == 200
        runtime = next(iter(h.app.state.runtimes.values()))
        with pytest.raises(ConnectionError):
            await runtime.relay.relay_once()
        assert await runtime.relay.backlog() == 1  # kept, not lost
        monkeypatch.setattr(h.bus, "publish", publish)
        events = await h.events()
        assert len(events) == 1 and events[0]["data"]["language"] == "ro"
        assert await runtime.relay.backlog() == 0
