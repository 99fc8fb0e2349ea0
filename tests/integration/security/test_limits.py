"""Limits (issue 10): body size → 413 on every service; per-tenant rate → 429 with Retry-After
on every service's API (and ingest's webhooks), other tenants unaffected.

A noisy tenant flooding ingest is limited to its own bucket: the quiet tenant's requests all
succeed. Ingest runs as deployed (its own process on PostgreSQL and Kafka) and the flood comes
from another process over real connections; the quiet tenant's latency is measured alone and
while the noisy one floods and printed, not asserted: this machine is shared and its timings
are noisy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from sbkit.auth import Keyring, mint
from sbkit.settings import KitSettings
from tests.conftest import drop_schema, free_port
from tests.fakes.processes import sigterm_and_wait
from tests.integration.security.apps import SERVICES, running

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
RATE, BURST, FLOODERS = 20, 20, 8


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _quiet(client: httpx.AsyncClient, n: int, tag: str) -> tuple[list[float], Counter[int]]:
    took, codes = [], Counter[int]()
    for i in range(n):
        body = {"external_id": f"{tag}-{i}", "sender": {"kind": "webchat", "value": "q"}}
        started = time.perf_counter()
        res = await client.post("/v1/messages", json=body | {"text": "hi"})
        took.append(time.perf_counter() - started)
        codes[res.status_code] += 1
        # a steady, polite client: at most ~16 requests/s, under the 20/s limit of the test
        await asyncio.sleep(QUIET_GAP_S)
    return took, codes


@contextmanager
def _ingest_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ingest"], env=env, stdout=out, stderr=out)
        try:
            yield proc
        finally:
            sigterm_and_wait(proc, settings=KitSettings(), log=log)  # its drain: the default


@pytest.mark.kafka
@pytest.mark.postgres
async def test_a_noisy_tenant_is_limited_and_the_quiet_one_keeps_its_service(
    tmp_path: Path, kafka_bootstrap: str, pg_url: str
) -> None:
    """Ingest as deployed (its own process, PostgreSQL, Kafka); the noisy tenant floods it from
    another process over real connections while the quiet tenant's latency is measured."""
    port, schema, keys = free_port(), "ingest_" + uuid.uuid4().hex[:10], tmp_path / "keys"
    ring = Keyring.load(keys)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")} | {
        "SB_BUS": "kafka",
        "SB_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SB_DATABASE_URL": pg_url,
        "SB_DB_SCHEMA": schema,
        "SB_AUTH_KEY_DIR": str(keys),
        "SB_PORT": str(port),
        "SB_INGEST_RATE_PER_S": str(RATE),
        "SB_INGEST_RATE_BURST": str(BURST),
        "SB_LOG_LEVEL": "WARNING",
    }
    url = f"http://127.0.0.1:{port}"

    def token(tenant: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {mint(ring, tenant_id=tenant, scopes=['*'], ttl_s=600)[1]}"
        }

    try:
        with _ingest_process(env, tmp_path / "ingest.log") as server:
            async with httpx.AsyncClient(base_url=url, headers=token("quiet")) as quiet:
                for _ in range(600):
                    assert server.poll() is None, (tmp_path / "ingest.log").read_text()[-3000:]
                    with contextlib.suppress(httpx.TransportError):
                        if (await quiet.get("/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
                alone, alone_codes = await _quiet(quiet, 60, "alone")
                noisy_token = token("noisy")["Authorization"].removeprefix("Bearer ")
                flood = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tests.integration.security.flood",
                    url, noisy_token, str(FLOODERS),
                    stdout=asyncio.subprocess.PIPE,
                )  # fmt: skip
                assert flood.stdout is not None
                assert (await flood.stdout.readline()).strip() == b"flooding"
                flood_start = time.monotonic()
                await asyncio.sleep(1.0)  # the flood at full speed before measuring
                during, during_codes = await _quiet(quiet, 60, "during")
                flood.terminate()
                report = json.loads((await flood.communicate())[0].decode().strip())
                flood_s = time.monotonic() - flood_start
    finally:
        await drop_schema(pg_url, schema)
    noisy = {int(code): n for code, n in report["codes"].items()}
    print(
        f"\nquiet tenant alone: p50 {_p(alone, 0.5):.1f} ms, p99 {_p(alone, 0.99):.1f} ms; while "
        f"{FLOODERS} noisy clients flood: p50 {_p(during, 0.5):.1f} ms, p99 {_p(during, 0.99):.1f} ms "
        f"(median ratio {statistics.median(during) / statistics.median(alone):.2f}); noisy answers "
        f"{noisy} in {flood_s:.1f} s ({sum(noisy.values()) / flood_s:.0f} requests/s); "
        "shared 2-core machine, noisy figures"
    )
    assert set(alone_codes) == {201} and set(during_codes) == {201}, (alone_codes, during_codes)
    assert noisy.get(429, 0) > 0 and noisy.get(201, 0) <= BURST + RATE * flood_s + 1, (
        noisy,
        flood_s,
    )
    retry = report["retry_after"]
    assert retry and all(r.isdigit() and int(r) >= 1 for r in retry), retry
