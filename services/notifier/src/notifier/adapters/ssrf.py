"""SSRF guard for tenant-configured URLs: private, loopback, link-local and metadata addresses refused.

Written here because no maintained library fits httpx's async hooks; the check runs on every
request httpx makes, redirects included. DNS can still change between the check and the
connect (rebinding); an egress proxy is the complete answer, this guard is the first line.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class UnsafeUrl(httpx.RequestError):
    """A URL points somewhere an outbound webhook must never go."""


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def addresses(host: str) -> list[str]:
    """The IP addresses a host name resolves to (an IP literal resolves to itself)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


async def check(url: httpx.URL) -> None:
    """Raise UnsafeUrl unless the URL is http(s) to public addresses only."""
    if url.scheme not in ("http", "https"):
        raise UnsafeUrl(f"scheme {url.scheme!r} refused")
    host = url.host.lower()
    if not host or host in METADATA_HOSTS or host.endswith(".internal") or host == "localhost":
        raise UnsafeUrl(f"host {host!r} refused")
    try:
        found = await addresses(host)
    except OSError as exc:
        raise UnsafeUrl(f"host {host!r} does not resolve") from exc
    bad = [a for a in found if _refused(ipaddress.ip_address(a))]
    if bad or not found:
        raise UnsafeUrl(f"host {host!r} resolves to a refused address")


async def guard(request: httpx.Request) -> None:
    """httpx request hook: runs for the first request and for every redirect."""
    await check(request.url)
