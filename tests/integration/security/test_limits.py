"""Limits (issue 10): body size → 413 on every service; per-tenant rate → 429 with Retry-After
on every service's API (and ingest's webhooks), other tenants unaffected.

A noisy tenant flooding ingest is limited to its own bucket: the quiet tenant's requests all
succeed. The quiet tenant's latency is measured alone and while the noisy one floods (the same
process and event loop, as one ingest replica) and printed, not asserted: this machine is
shared and its timings are noisy.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.security.apps import SERVICES, running
from tests.unit.ingest.conftest import Harness, start_harness

OVER = 3 * 1024 * 1024  # over every service's limit (1 MiB; ingest 2 MiB for raw MIME)


@pytest.mark.parametrize("name", SERVICES)
async def test_bodies_over_the_limit_are_413_with_or_without_a_declared_length(
    name: str, tmp_path: Path
) -> None:
    async with running(name, tmp_path) as r:
        body = b"x" * OVER

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read up to the limit
            for at in range(0, OVER, 64 * 1024):
                yield body[at : at + 64 * 1024]

        for content in (body, chunks()):
            res = await r.client.post(
                "/v1/anything",
                content=content,
                headers={**r.auth("acme"), "content-type": "application/json"},
            )
            assert res.status_code == 413, res.text
            assert res.headers["content-type"] == "application/problem+json"


# A cheap authenticated read of each service (its parameters do not matter: the token, its
# scope and its tenant's rate are checked before anything else).
READS = {
    "ingest": "/v1/channels",
    "crm": "/v1/customers?email=nobody@example.com",
    "routing": "/v1/tickets",
    "analytics": "/v1/kpis?from=2026-11-20T00:00:00Z&to=2026-11-21T00:00:00Z",
    "notifier": "/v1/notifications",
}


@pytest.mark.parametrize("name", SERVICES)
async def test_every_service_limits_each_tenant_to_its_own_rate(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for prefix in ("SB_API", "SB_INGEST"):  # ingest's API shares its webhooks' bucket
        monkeypatch.setenv(f"{prefix}_RATE_PER_S", "0.01")  # no refill within the test
        monkeypatch.setenv(f"{prefix}_RATE_BURST", "3")
    async with running(name, tmp_path) as r:
        first = [(await r.client.get(READS[name], headers=r.auth("noisy"))) for _ in range(3)]
        assert all(res.status_code not in (429, 500) for res in first), [
            (res.status_code, res.text) for res in first
        ]
        over = await r.client.get(READS[name], headers=r.auth("noisy"))
        assert over.status_code == 429, over.text
        assert over.headers["content-type"] == "application/problem+json"
        assert over.headers["retry-after"].isdigit() and int(over.headers["retry-after"]) >= 1
        other = await r.client.get(READS[name], headers=r.auth("quiet"))
        assert other.status_code == first[0].status_code, other.text
        forged = await r.client.get(READS[name], headers={"Authorization": "Bearer forged"})
        assert forged.status_code == 401  # checked before the bucket: floods of junk drain nothing


QUIET_GAP_S = 0.06  # the quiet tenant must stay under its own limit even when requests are instant


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _quiet(h: Harness, n: int, tag: str) -> tuple[list[float], Counter[int]]:
    took, codes = [], Counter[int]()
    for i in range(n):
        body = {
            "external_id": f"{tag}-{i}",
            "sender": {"kind": "webchat", "value": "q"},
            "text": "hi",
        }
        started = time.perf_counter()
        res = await h.client.post("/v1/messages", json=body, headers=h.token("quiet"))
        took.append(time.perf_counter() - started)
        codes[res.status_code] += 1
        # a steady, polite client: at most ~16 requests/s, under the 20/s limit of the test
        await asyncio.sleep(QUIET_GAP_S)
    return took, codes


async def _flood(
    h: Harness, worker: int, stop: asyncio.Event, codes: Counter[int], retry: set[str]
) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        body = {
            "external_id": f"n-{worker}-{i}",
            "sender": {"kind": "webchat", "value": "n"},
            "text": "x",
        }
        res = await h.client.post("/v1/messages", json=body, headers=h.token("noisy"))
        codes[res.status_code] += 1
        if res.status_code == 429:
            retry.add(res.headers.get("retry-after", ""))


async def test_a_noisy_tenant_is_limited_and_the_quiet_one_keeps_its_service(
    tmp_path: Path,
) -> None:
    async for h in start_harness(tmp_path, ingest_rate_per_s=20.0, ingest_rate_burst=20):
        alone, alone_codes = await _quiet(h, 60, "alone")
        stop, noisy, retry = asyncio.Event(), Counter[int](), set[str]()
        flood_start = time.monotonic()
        flooders = [asyncio.create_task(_flood(h, w, stop, noisy, retry)) for w in range(8)]
        await asyncio.sleep(0.2)
        during, during_codes = await _quiet(h, 60, "during")
        stop.set()
        await asyncio.gather(*flooders)
        flood_s = time.monotonic() - flood_start
        print(
            f"\nquiet tenant alone: p50 {_p(alone, 0.5):.1f} ms, p99 {_p(alone, 0.99):.1f} ms; "
            f"while 8 noisy workers flood: p50 {_p(during, 0.5):.1f} ms, p99 {_p(during, 0.99):.1f} ms "
            f"(median ratio {statistics.median(during) / statistics.median(alone):.2f}); "
            f"noisy answers {dict(noisy)}; shared machine, noisy figures"
        )
        assert set(alone_codes) == {201} and set(during_codes) == {201}, (alone_codes, during_codes)
        assert noisy[429] > 0 and noisy[201] <= 20 + 20 * flood_s + 1, (noisy, flood_s)
        assert retry and all(r.isdigit() and int(r) >= 1 for r in retry), retry
