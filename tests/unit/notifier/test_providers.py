"""HTTP providers: signatures, idempotency keys, bounded retries, 4xx, and the SSRF guard (redirects too)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.adapters.providers import build_sender
from notifier.adapters.ssrf import Allowlist, UnsafeUrl, check
from notifier.config import NotifierSettings
from notifier.service_layer.ports import Outgoing, SendFailed

PUBLIC = "https://93.184.216.34"
MSG = Outgoing("acme", "whatsapp", "+48600100200", "Subj", "Twoja paczka", "n-1:whatsapp")


def settings(tmp_path: Path, **kw: Any) -> NotifierSettings:
    base: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/n.db",
        "notifier_webhook_url": f"{PUBLIC}/hook",
        "notifier_webhook_secret": "s3cret",
        "notifier_sms_url": PUBLIC,
        "notifier_sms_account": "AC1",
        "notifier_sms_token": "tok",
        "notifier_sms_from": "+48500000000",
        "notifier_email_url": f"{PUBLIC}/send",
        "notifier_email_key": "k",
    }
    return NotifierSettings(**(base | kw))


async def test_webhook_is_signed_and_carries_the_idempotency_key(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "w-1"})

    sender = build_sender(settings(tmp_path), httpx.MockTransport(handler))
    accepted = await sender.send(MSG)
    body = seen[0].content
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert seen[0].headers["x-switchboard-signature"] == expected
    assert seen[0].headers["idempotency-key"] == "n-1:whatsapp"
    assert (accepted.provider, accepted.provider_message_id) == ("webhook", "w-1")


async def test_twilio_sms_is_retried_on_5xx_with_the_same_token(tmp_path: Path) -> None:
    tokens: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        tokens.append(request.headers["i-twilio-idempotency-token"])
        assert request.url.path == "/2010-04-01/Accounts/AC1/Messages.json"
        assert request.headers["authorization"].startswith("Basic ")
        return httpx.Response(503) if len(tokens) < 3 else httpx.Response(201, json={"sid": "SM1"})

    sender = build_sender(settings(tmp_path), httpx.MockTransport(handler))
    accepted = await sender.send(Outgoing("acme", "sms", "+48600100200", "", "x", "n-1:sms"))
    assert accepted.provider_message_id == "SM1" and tokens == ["n-1:sms"] * 3


async def test_provider_outage_fails_after_bounded_retries(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("down")

    sender = build_sender(settings(tmp_path), httpx.MockTransport(handler))
    with pytest.raises(SendFailed):
        await sender.send(MSG)
    assert calls == 3


async def test_client_error_is_not_retried(tmp_path: Path) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400)

    sender = build_sender(settings(tmp_path), httpx.MockTransport(handler))
    with pytest.raises(SendFailed):
        await sender.send(MSG)
    assert calls == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://localhost/x",
        "http://metadata.google.internal/x",
        "file:///etc/passwd",
    ],
)
async def test_private_loopback_link_local_and_metadata_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check(httpx.URL(url))


async def test_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "93.184.216.34":
            return httpx.Response(302, headers={"location": "http://169.254.169.254/latest"})
        return httpx.Response(200, json={"id": "leak"})

    sender = build_sender(settings(tmp_path), httpx.MockTransport(handler))
    with pytest.raises(SendFailed, match="refused"):
        await sender.send(MSG)


async def test_an_allow_listed_private_host_passes_and_others_stay_refused(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        notifier_webhook_url="http://127.0.0.1/hook",
        notifier_sms_url="http://10.0.0.7",
        notifier_private_hosts=["127.0.0.1"],
    )
    sender = build_sender(s, httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    assert (await sender.send(MSG)).provider_message_id == "n-1:whatsapp"
    with pytest.raises(SendFailed, match="refused"):
        await sender.send(Outgoing("acme", "sms", "+48600100200", "", "x", "n-1:sms"))


async def test_a_redirect_from_an_allowed_host_to_another_private_one_is_refused(
    tmp_path: Path,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "10.1.0.5":
            return httpx.Response(302, headers={"location": "http://10.9.9.9/x"})
        return httpx.Response(200, json={"id": "leak"})

    s = settings(
        tmp_path,
        notifier_webhook_url="http://10.1.0.5/hook",
        notifier_private_hosts=["10.1.0.0/24"],
    )
    with pytest.raises(SendFailed, match="refused"):
        await build_sender(s, httpx.MockTransport(handler)).send(MSG)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://169.254.169.254/latest", ["169.254.0.0/16"]),
        ("http://metadata.google.internal/x", ["metadata.google.internal"]),
        ("http://[fd00:ec2::254]/x", ["fd00::/8"]),
    ],
)
async def test_metadata_endpoints_are_refused_even_when_listed(
    url: str, allowed: list[str]
) -> None:
    with pytest.raises(UnsafeUrl):
        await check(httpx.URL(url), Allowlist.parse(allowed))


async def test_allow_list_entries_name_hosts_and_networks() -> None:
    listed = Allowlist.parse(["localhost", "10.20.0.0/16", "[::1]", " "])
    await check(httpx.URL("http://localhost:8080/x"), listed)
    await check(httpx.URL("http://10.20.3.4/x"), listed)
    await check(httpx.URL("http://[::1]:9/x"), listed)
    with pytest.raises(UnsafeUrl):
        await check(httpx.URL("http://10.21.0.1/x"), listed)


async def test_guard_is_on_by_default(tmp_path: Path) -> None:
    assert NotifierSettings().notifier_private_hosts == []
    s = settings(tmp_path, notifier_email_url="http://127.0.0.1:1/send")
    sender = build_sender(s, httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    with pytest.raises(SendFailed, match="refused"):
        await sender.send(Outgoing("acme", "email", "a@x.pl", "s", "t", "k"))
