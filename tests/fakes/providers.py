"""A real local HTTP server playing notifier's providers: signed webhook, Twilio-style SMS, email API.

It listens on 127.0.0.1 (a free port), checks what a real provider checks (the webhook's
HMAC over the raw body, Twilio's basic auth and form fields, the email API's bearer key),
records every request, dedupes on the idempotency key like those providers do (a repeated
key answers the first message's id and sends nothing new), and fails on demand: a status
per API, a hang per API (`hang[api] = seconds`: read the request, answer nothing in time, accept
nothing), or `down()` (nothing listening, connections refused) until `up()`.
`kill_on_accept` SIGKILLs a process right after a message was accepted and before the
answer leaves: the "crash between sent and recorded" of the issue.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

WEBHOOK_SECRET = "whsec-test"
SMS_ACCOUNT, SMS_TOKEN, SMS_FROM = "AC123", "twilio-token", "+48500000000"
EMAIL_KEY = "email-key"


@dataclass
class Seen:
    """One request as the provider saw it."""

    api: str  # webhook | sms | email
    key: str  # the idempotency key it carried ('' when none)
    recipient: str
    text: str
    authentic: bool  # signature / credentials checked out
    status: int  # what the provider answered


@dataclass
class ProviderServer:
    """The fake providers; `url(api)` is what notifier's settings point at."""

    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    accepted: dict[str, Seen] = field(default_factory=dict)  # idempotency key -> first message
    status: dict[str, int] = field(default_factory=dict)  # api -> forced failure status
    hang: dict[str, float] = field(default_factory=dict)  # api -> seconds before a late 504
    kill_on_accept: int | None = None
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # lifecycle ------------------------------------------------------------------
    def up(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        handler = type("Handler", (_Handler,), {"provider": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True  # a hanging request never blocks down()
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: every connection is refused (a provider outage)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def settings(self) -> dict[str, Any]:
        """notifier settings pointing every provider here (loopback allowed by name, guard on)."""
        base = f"http://127.0.0.1:{self.port}"
        return {
            "notifier_webhook_url": f"{base}/hook",
            "notifier_webhook_secret": WEBHOOK_SECRET,
            "notifier_sms_url": f"{base}/twilio",
            "notifier_sms_account": SMS_ACCOUNT,
            "notifier_sms_token": SMS_TOKEN,
            "notifier_sms_from": SMS_FROM,
            "notifier_email_url": f"{base}/email/send",
            "notifier_email_key": EMAIL_KEY,
            "notifier_private_hosts": ["127.0.0.1"],
            "notifier_http_timeout_ms": 2000,
        }

    # what the tests look at -----------------------------------------------------
    def sends(self, api: str | None = None) -> list[Seen]:
        """Distinct messages the provider accepted (what a customer would receive)."""
        return [s for s in self.accepted.values() if api is None or s.api == api]

    def calls(self, api: str | None = None) -> list[Seen]:
        """Every request that reached the provider, refused or duplicate ones included."""
        return [s for s in self.requests if api is None or s.api == api]

    # the provider's logic -------------------------------------------------------
    def handle(self, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        """Check, record, dedupe; returns the status and the JSON answer."""
        seen = _parse(path, headers, body)
        if seen.api in self.hang:
            seen.status = 504
            with self._lock:
                self.requests.append(seen)
            time.sleep(self.hang[seen.api])
            return 504, {"error": "timeout"}
        with self._lock:
            status = 401 if not seen.authentic else self.status.get(seen.api, 0)
            first = self.accepted.get(seen.key) if seen.key else None
            if not status:
                status = 201 if seen.api == "sms" else 200
            seen.status = status
            self.requests.append(seen)
            if status >= 300:
                return status, {"error": "refused" if status < 500 else "unavailable"}
            if first is None:
                self.accepted[seen.key or f"anon-{len(self.requests)}"] = seen
                first = seen
            number = list(self.accepted.values()).index(first)
        if self.kill_on_accept is not None:
            os.kill(self.kill_on_accept, signal.SIGKILL)  # accepted, never answered
        name = {"webhook": "id", "sms": "sid", "email": "id"}[seen.api]
        return status, {name: f"{seen.api}-{number}"}


def _parse(path: str, headers: Any, body: bytes) -> Seen:
    if path == "/hook":
        doc = json.loads(body)
        sig = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(headers.get("x-switchboard-signature", ""), sig)
        ok = ok and doc.get("idempotency_key") == headers.get("idempotency-key")
        return Seen("webhook", headers.get("idempotency-key", ""), doc["recipient"], doc["text"],
                    ok, 0)  # fmt: skip
    if path == f"/twilio/2010-04-01/Accounts/{SMS_ACCOUNT}/Messages.json":
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        basic = base64.b64encode(f"{SMS_ACCOUNT}:{SMS_TOKEN}".encode()).decode()
        ok = headers.get("authorization") == f"Basic {basic}" and form.get("From") == SMS_FROM
        return Seen("sms", headers.get("i-twilio-idempotency-token", ""), form.get("To", ""),
                    form.get("Body", ""), ok, 0)  # fmt: skip
    if path == "/email/send":
        doc = json.loads(body)
        ok = headers.get("authorization") == f"Bearer {EMAIL_KEY}"
        return Seen("email", headers.get("idempotency-key", ""), doc["to"], doc["text"], ok, 0)
    return Seen("unknown", "", "", "", False, 0)


class _Handler(BaseHTTPRequestHandler):
    provider: ProviderServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        status, doc = self.provider.handle(self.path, self.headers, body)
        out = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        """Quiet."""
