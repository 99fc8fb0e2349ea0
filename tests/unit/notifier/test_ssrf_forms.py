"""SSRF guard (issue 10): every spelling of a refused address, names resolving to one, redirects.

The guard in notifier.adapters.ssrf sees the URL httpx will connect to: IP literals in any form
the resolver accepts (decimal, hex, octal, short), IPv6 (loopback, link-local, unique-local,
IPv4-mapped/compatible, 6to4 and Teredo wrapping a private IPv4), and names whose DNS answers
include a refused address. Resolution is faked at the socket level, so the real lookup path runs.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifier.adapters.providers import SendFailed, build_sender
from notifier.adapters.ssrf import UnsafeUrl, check
from tests.unit.notifier.test_providers import MSG, settings

PUBLIC = "93.184.216.34"
# name → what a hostile DNS answers for it
DNS = {
    "loopback.evil.test": ["127.0.0.1"],
    "private.evil.test": ["10.0.0.8"],
    "mixed.evil.test": [PUBLIC, "192.168.1.1"],  # one bad answer is enough
    "metadata.evil.test": ["169.254.169.254"],
    "v6-loopback.evil.test": ["::1"],
    "v6-link-local.evil.test": ["fe80::1"],
    "v6-ula.evil.test": ["fd12:3456::1"],
    "public.example.test": [PUBLIC],
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in DNS:
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, 0),
                )
                for ip in DNS[host]
            ]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


REFUSED = [
    # IPv4 loopback, private, link-local, metadata, shared (CGNAT), unspecified, broadcast
    "http://127.0.0.1/",
    "http://127.1/",
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0x7f000001/",  # hex
    "http://0x7f.0.0.1/",
    "http://0177.0.0.1/",  # octal
    "http://017700000001/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.1/",
    "http://3232235521/",  # decimal 192.168.0.1
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",  # decimal 169.254.169.254
    "http://0xa9fea9fe/",  # hex 169.254.169.254
    "http://169.254.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0/",
    "http://0/",
    "http://255.255.255.255/",
    # IPv6
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
    "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/",  # Teredo, client 10.0.0.1
    # names
    "http://localhost/",
    "http://LOCALHOST./",
    "http://metadata.google.internal/",
    "http://loopback.evil.test/",
    "http://private.evil.test:8443/",
    "http://mixed.evil.test/",
    "http://metadata.evil.test/",
    "http://v6-loopback.evil.test/",
    "http://v6-link-local.evil.test/",
    "http://v6-ula.evil.test/",
    # schemes
    "ftp://93.184.216.34/",
    "gopher://93.184.216.34/",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_every_form_of_a_refused_address_is_refused(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:  # e.g. dotted octal: httpx itself never sends it anywhere
        return
    with pytest.raises(UnsafeUrl):
        await check(parsed)


@pytest.mark.parametrize("url", [f"http://{PUBLIC}/", "https://public.example.test/x"])
async def test_public_addresses_pass(url: str) -> None:
    await check(httpx.URL(url))


@pytest.mark.parametrize(
    "location",
    [
        "http://2130706433/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://loopback.evil.test/",
        "http://metadata.evil.test/",
        "http://[fe80::1]/",
    ],
)
async def test_redirects_to_any_refused_form_are_refused(tmp_path: Path, location: str) -> None:
    hops: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hops.append(str(request.url))
        if request.url.host == PUBLIC:
            return httpx.Response(302, headers={"location": location})
        return httpx.Response(200, json={"id": "leak"})

    sender = build_sender(settings(tmp_path), httpx.MockTransport(handler))
    with pytest.raises(SendFailed, match="refused"):
        await sender.send(MSG)
    assert all(PUBLIC in hop for hop in hops), hops  # nothing was sent past the redirect
