"""ingest benchmark over real Kafka and PostgreSQL: webhook accept latency and sustained messages/s.

    SB_KAFKA_PORT=19092 SB_PG_PORT=15432 python -m bench.ingest_webhooks

Runs the ingest service as it runs in the local stack (`python -m ingest`: uvicorn on asyncio's loop,
httptools; SB_BENCH_WORKERS replicas on consecutive ports from SB_STACK_BASE_PORT+1, default
28011) in a fresh schema, and drives it from this process with `bench.http_load` (pre-built,
pre-signed requests over keep-alive sockets, so the client spends little of the CPU it
measures; its share is printed). Phases: open loop at fixed request rates (SB_BENCH_RATES,
default 100,250,500 per second for SB_BENCH_SECONDS each) of single-message signed WhatsApp
webhooks, printing accept latency p50/p99 (2xx = outbox row committed); then closed loop,
batches of SB_BENCH_BATCH messages with SB_BENCH_CONCURRENCY requests in flight for
SB_BENCH_SUSTAIN_SECONDS, timed until every accepted message is on Kafka (acks=all) → msg/s.

It measures a started service: a replica counts as up once /readyz answers 200 with every
check true (ingest's own readiness gates on the database only, so it answers 200 while its
consumers still join their groups on the topics it has just created), and the warm-up ends
when its webhooks are on Kafka. Timed from the first 200, the 100/s phase began while a fresh
broker still spent 1-1.6 cores creating those topics and electing their leaders, and its
first ~0.7 s held every slow request (100/s p99 27-125 ms; services/ingest/README.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx

from bench.http_load import (
    Pool,
    build_request,
    cpu_seconds,
    open_loop,
    pct,
    process_cpu_seconds,
)
from sbkit.auth import Keyring, mint

KAFKA = f"127.0.0.1:{os.environ.get('SB_KAFKA_PORT', '19092')}"
PG_DSN = f"postgresql://postgres@127.0.0.1:{os.environ.get('SB_PG_PORT', '15432')}/switchboard"
RATES = [int(r) for r in os.environ.get("SB_BENCH_RATES", "100,250,500").split(",")]
SECONDS = float(os.environ.get("SB_BENCH_SECONDS", "5"))
BATCH = int(os.environ.get("SB_BENCH_BATCH", "20"))
CONCURRENCY = int(os.environ.get("SB_BENCH_CONCURRENCY", "16"))
SUSTAIN_S = float(os.environ.get("SB_BENCH_SUSTAIN_SECONDS", "10"))
WORKERS = int(os.environ.get("SB_BENCH_WORKERS", "1"))
BASE_PORT = int(os.environ.get("SB_STACK_BASE_PORT", "28010")) + 1  # clear of a local stack
SECRET = "bench-secret"
TEXT = "Dzień dobry, moja paczka nie dotarła. Proszę o informację, kiedy mogę się jej spodziewać."


def webhook(path: str, n: int, start: int) -> bytes:
    """A signed WhatsApp Cloud API webhook request with `n` messages from distinct senders."""
    messages = [
        {
            "from": f"4860{(start + i) % 10_000_000:07d}",
            "id": f"wamid.{uuid.uuid4().hex}",
            "timestamp": "1732262400",
            "type": "text",
            "text": {"body": TEXT},
        }
        for i in range(n)
    ]
    value = {
        "messaging_product": "whatsapp",
        "messages": messages,
        "metadata": {"display_phone_number": "48221234567"},
    }
    change = {"field": "messages", "value": value}
    doc = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    raw = json.dumps(doc).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sig}
    return build_request("bench", path, raw, headers)


class Meter:
    """CPU used by the servers and by this client between two points, as % of one core."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.wall, self.own, self.servers = time.perf_counter(), cpu_seconds(), self._servers()

    def _servers(self) -> float:
        return sum(process_cpu_seconds(p) for p in self.pids)

    def report(self, units: int, unit: str) -> str:
        wall = time.perf_counter() - self.wall
        server = self._servers() - self.servers
        client = cpu_seconds() - self.own
        return (
            f"cpu: ingest {server / wall:.0%} ({server / max(units, 1) * 1000:.2f} ms/{unit}), "
            f"load generator {client / wall:.0%} (of one core)"
        )


async def fixed_rate(pool: Pool, path: str, rate: int, pids: list[int]) -> None:
    """Open loop at `rate` single-message webhooks/s; p50/p99 of the 2xx answers."""
    total = int(rate * SECONDS)
    requests = [webhook(path, 1, rate * 1_000_000 + i) for i in range(total)]
    meter = Meter(pids)
    result = await open_loop(pool, requests, rate)
    print(
        f"rate {rate:>4}/s  n={total}  p50={pct(result.latencies, 0.50):6.1f} ms  "
        f"p99={pct(result.latencies, 0.99):6.1f} ms  non-2xx={result.failures}  "
        f"{meter.report(total, 'request')}",
        flush=True,
    )


async def sustained(pool: Pool, path: str, pids: list[int], db: asyncpg.Connection) -> None:
    """Closed loop batches for SUSTAIN_S, then wait for the outbox to drain to Kafka."""
    planned = int(SUSTAIN_S * 400)  # more than the server can take in that time
    requests = iter([webhook(path, BATCH, 50_000_000 + i * BATCH) for i in range(planned)])
    accepted, failures = 0, 0
    meter = Meter(pids)
    start = time.perf_counter()
    deadline = start + SUSTAIN_S

    async def worker() -> None:
        nonlocal accepted, failures
        for request in requests:
            if time.perf_counter() >= deadline:
                return
            status, body = await pool.send(request)
            if status == 200:
                accepted += json.loads(body)["accepted"]
            else:
                failures += 1

    await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
    accepted_s = time.perf_counter() - start
    usage = meter.report(accepted, "message")
    await relayed(db)
    total_s = time.perf_counter() - start
    stored = await db.fetchval("SELECT count(*) FROM messages")
    print(
        f"sustained: {accepted} messages accepted in {accepted_s:.1f} s "
        f"({accepted / accepted_s:,.0f}/s accepted, {accepted / total_s:,.0f}/s on Kafka acks=all)"
        f"  non-2xx={failures}  {usage}  [{stored} rows stored in all phases]",
        flush=True,
    )


@contextmanager
def servers(schema: str, keys: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """WORKERS `python -m ingest` processes on consecutive ports (the first one migrates)."""
    env = {
        **os.environ,
        "SB_BUS": "kafka",
        "SB_KAFKA_BOOTSTRAP": KAFKA,
        "SB_DATABASE_URL": PG_DSN.replace("postgresql://", "postgresql+asyncpg://"),
        "SB_DB_SCHEMA": schema,
        "SB_AUTH_KEY_DIR": str(keys),
        "SB_LOG_LEVEL": "WARNING",
        "SB_OUTBOX_POLL_MS": "50",
        "SB_INGEST_RATE_PER_S": "1000000",
        "SB_INGEST_RATE_BURST": "1000000",
        "SB_HOST": "127.0.0.1",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(WORKERS):
            env_i = {**env, "SB_PORT": str(BASE_PORT + i), "SB_MIGRATE_ON_START": str(i == 0)}
            procs.append(subprocess.Popen([sys.executable, "-m", "ingest"], env=env_i))
            wait_ready(BASE_PORT + i, procs[-1])
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Poll /readyz until the replica is started: 200 *and* its Kafka checks true (fail if it
    exits). Ingest answers 200 on its database alone (`ready_without_bus`), while its consumers
    may still be joining their groups on topics it has just created."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ingest on :{port} exited with {proc.returncode}")
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if r.status_code == 200 and all(r.json()["checks"].values()):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"ingest on :{port} not ready")


async def relayed(db: asyncpg.Connection) -> None:
    """Wait until the outbox is empty: every accepted message is on Kafka."""
    while await db.fetchval("SELECT count(*) FROM outbox"):  # noqa: ASYNC110 - polling the DB
        await asyncio.sleep(0.05)


async def main() -> None:
    """Start the replicas on a fresh schema, run both phases, drop the schema."""
    schema = "bench_ingest_" + uuid.uuid4().hex[:8]
    keys = Path(tempfile.mkdtemp()) / "keys"
    _, token = mint(Keyring.load(keys), tenant_id="bench", scopes=["*"], ttl_s=3600)
    db = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    print(f"ingest: {WORKERS} replica(s) on :{BASE_PORT}.., Kafka {KAFKA}, load {os.getloadavg()}")
    try:
        with servers(schema, keys) as procs:
            channel = {
                "kind": "whatsapp",
                "name": "b",
                "settings": {"default_region": "PL"},
                "secrets": {"app_secret": SECRET, "verify_token": "v"},
            }
            async with httpx.AsyncClient() as client:
                r = await client.post(
                    f"http://127.0.0.1:{BASE_PORT}/v1/channels",
                    json=channel,
                    headers={"Authorization": f"Bearer {token}"},
                )
            path = r.json()["webhook_path"]
            pids = [p.pid for p in procs]
            pool = Pool([("127.0.0.1", BASE_PORT + i) for i in range(WORKERS)])
            await pool.warm(64 * WORKERS)
            started = time.perf_counter()
            # warm-up: until the relay has published it too (its first publish fetches the
            # new topic's metadata), so no timed phase starts inside the startup
            await asyncio.gather(*[pool.send(webhook(path, 1, i)) for i in range(64)])
            await relayed(db)
            print(f"warm-up: 64 webhooks on Kafka in {time.perf_counter() - started:.2f} s")
            for rate in RATES:
                await fixed_rate(pool, path, rate, pids)
            await sustained(pool, path, pids, db)
            pool.close()
    finally:
        await db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await db.close()


if __name__ == "__main__":
    import uvloop  # the load generator only: cheaper per request (the server: sbkit.serve)

    uvloop.run(main())
