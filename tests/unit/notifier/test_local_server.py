"""Providers against a real local HTTP server: an outage then recovery, the same idempotency key each time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from notifier.adapters.providers import build_sender
from notifier.config import NotifierSettings
from notifier.service_layer.ports import Outgoing, SendFailed


class Provider(BaseHTTPRequestHandler):
    """Plays an email API: fails while `down`, dedupes on the idempotency key."""

    down = True
    accepted: dict[str, bytes] = {}
    calls = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).calls += 1
        if type(self).down:
            self.send_response(503)
            self.end_headers()
            return
        key = self.headers["idempotency-key"]
        self.accepted.setdefault(key, body)
        out = json.dumps({"id": f"em-{list(self.accepted).index(key)}"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/send"
    httpd.shutdown()


async def test_outage_then_recovery_against_a_real_server(server: str, tmp_path: Path) -> None:
    settings = NotifierSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/n.db",
        notifier_email_url=server,
        notifier_email_key="k",
        notifier_private_hosts=["127.0.0.1"],
    )
    sender = build_sender(settings)
    msg = Outgoing("acme", "email", "anna@x.pl", "Opóźnienie", "Twoja paczka", "n-1:email")
    with pytest.raises(SendFailed):
        await sender.send(msg)
    assert Provider.calls == 3
    Provider.down = False
    first, again = await sender.send(msg), await sender.send(msg)
    assert first.provider_message_id == again.provider_message_id == "em-0"
    assert len(Provider.accepted) == 1


async def test_loopback_server_is_refused_without_the_setting(server: str, tmp_path: Path) -> None:
    settings = NotifierSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/n.db", notifier_email_url=server
    )
    with pytest.raises(SendFailed, match="refused"):
        await build_sender(settings).send(Outgoing("acme", "email", "a@x.pl", "s", "t", "k"))
