"""SSRF guard for tenant-configured URLs: private, loopback, link-local and metadata addresses refused.

Written here because no maintained library fits httpx's async hooks; the check runs on every
request httpx makes, redirects included. DNS can still change between the check and the
connect (rebinding); an egress proxy is the complete answer, this guard is the first line.

An explicit allow-list (`SB_NOTIFIER_PRIVATE_HOSTS`: host names, IPs or networks) lets named
private destinations through — an on-premise provider, a test server on 127.0.0.1 — without
turning the guard off for everything else. Cloud metadata endpoints are refused even if listed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
METADATA_IPS = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


class UnsafeUrl(httpx.RequestError):
    """A URL points somewhere an outbound webhook must never go."""


@dataclass(frozen=True)
class Allowlist:
    """Private destinations allowed on purpose: exact host names, and IPs or networks (CIDR)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Entries like `127.0.0.1`, `10.20.0.0/16`, `[::1]` or `sms.corp.local`."""
        hosts, networks = set(), []
        for raw in entries:
            entry = raw.strip().strip("[]").lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def covers(self, host: str, ip: IP) -> bool:
        """Whether this private address of this host was allowed on purpose."""
        return host in self.hosts or any(ip in net for net in self.networks)


NOTHING = Allowlist()


def _refused(ip: IP) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address a relay or the OS would reach: judge that one
        teredo = ip.teredo
        wrapped = ip.ipv4_mapped or ip.sixtofour or (teredo[1] if teredo else None)
        if wrapped is not None and _refused(wrapped):
            return True
    return (
        not ip.is_global  # shared (100.64/10), benchmarking, documentation ranges too
        or ip.is_private
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


async def check(url: httpx.URL, allowed: Allowlist = NOTHING) -> None:
    """Raise UnsafeUrl unless the URL is http(s) to public (or explicitly allowed) addresses only."""
    if url.scheme not in ("http", "https"):
        raise UnsafeUrl(f"scheme {url.scheme!r} refused")
    host = url.host.lower()
    if not host or host in METADATA_HOSTS:
        raise UnsafeUrl(f"host {host!r} refused")
    named_private = host.endswith(".internal") or host == "localhost"
    if named_private and host not in allowed.hosts:
        raise UnsafeUrl(f"host {host!r} refused")
    try:
        found = [ipaddress.ip_address(a) for a in await addresses(host)]
    except OSError as exc:
        raise UnsafeUrl(f"host {host!r} does not resolve") from exc
    bad = [
        ip for ip in found if ip in METADATA_IPS or (_refused(ip) and not allowed.covers(host, ip))
    ]
    if bad or not found:
        raise UnsafeUrl(f"host {host!r} resolves to a refused address")


def guard_for(allowed: Allowlist = NOTHING) -> Callable[[httpx.Request], Awaitable[None]]:
    """An httpx request hook with this allow-list: runs for the first request and every redirect."""

    async def hook(request: httpx.Request) -> None:
        await check(request.url, allowed)

    return hook


guard = guard_for()
