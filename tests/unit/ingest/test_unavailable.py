"""Our own outage answers 503 with Retry-After (providers retry), never a 2xx without a committed row."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.unit.ingest.conftest import start_harness


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
