"""ingest benchmark over real Kafka and PostgreSQL: webhook accept latency and sustained messages/s.

    SB_KAFKA_PORT=19092 SB_PG_PORT=15432 python -m bench.ingest_webhooks

Drives the ingest app in-process (httpx ASGI transport, so no socket overhead is measured) with
signed WhatsApp webhooks: open-loop at fixed request rates (SB_BENCH_RATES, default 100,250,500
per second for SB_BENCH_SECONDS each) printing accept latency p50/p99 (2xx = outbox row
committed), then closed-loop batches of SB_BENCH_BATCH messages with SB_BENCH_CONCURRENCY
requests in flight, timed until every accepted message is on Kafka (acks=all) → messages/s.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

from ingest.app import create_app
from ingest.config import IngestSettings
from sbkit.auth import Keyring, mint
from sbkit.db.engine import make_engine

KAFKA = f"127.0.0.1:{os.environ.get('SB_KAFKA_PORT', '19092')}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{os.environ.get('SB_PG_PORT', '15432')}/switchboard"
RATES = [int(r) for r in os.environ.get("SB_BENCH_RATES", "100,250,500").split(",")]
SECONDS = float(os.environ.get("SB_BENCH_SECONDS", "5"))
BATCH = int(os.environ.get("SB_BENCH_BATCH", "20"))
CONCURRENCY = int(os.environ.get("SB_BENCH_CONCURRENCY", "16"))
SUSTAIN_S = float(os.environ.get("SB_BENCH_SUSTAIN_SECONDS", "10"))
SECRET = "bench-secret"
TEXT = "Dzień dobry, moja paczka nie dotarła. Proszę o informację, kiedy mogę się jej spodziewać."


def webhook(n: int, start: int) -> tuple[bytes, dict[str, str]]:
    """A signed WhatsApp Cloud API webhook with `n` messages from distinct senders."""
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
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "messages": messages,
                            "metadata": {"display_phone_number": "48221234567"},
                        },
                    }
                ],
            }
        ],
    }
    raw = json.dumps(doc).encode()
    sig = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"content-type": "application/json", "x-hub-signature-256": sig}


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] * 1000 if len(values) > 1 else 0.0


async def fixed_rate(client: httpx.AsyncClient, path: str, rate: int) -> None:
    """Open loop: one single-message webhook every 1/rate s; print p50/p99 of the 2xx ones."""
    latencies: list[float] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        raw, headers = webhook(1, i)
        t0 = time.perf_counter()
        r = await client.post(path, content=raw, headers=headers)
        if r.status_code == 200:
            latencies.append(time.perf_counter() - t0)
        else:
            failures += 1

    tasks, start, total = [], time.perf_counter(), int(rate * SECONDS)
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(rate * 1_000_000 + i)))
    await asyncio.gather(*tasks)
    print(
        f"rate {rate:>4}/s  n={total}  p50={pct(latencies, 0.50):6.1f} ms  "
        f"p99={pct(latencies, 0.99):6.1f} ms  non-2xx={failures}"
    )


async def sustained(client: httpx.AsyncClient, path: str, app: object) -> None:
    """Closed loop batches for SUSTAIN_S, then wait for the outbox to drain to Kafka."""
    runtime = next(iter(app.state.runtimes.values()))  # type: ignore[attr-defined]
    accepted, deadline, counter = 0, time.perf_counter() + SUSTAIN_S, 0
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal accepted, counter
        while time.perf_counter() < deadline:
            counter += 1
            raw, headers = webhook(BATCH, 50_000_000 + counter * BATCH)
            r = await client.post(path, content=raw, headers=headers)
            if r.status_code == 200:
                accepted += r.json()["accepted"]

    await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
    accepted_s = time.perf_counter() - start
    while await runtime.relay.backlog():  # noqa: ASYNC110 - polling the database, no event exists
        await asyncio.sleep(0.05)
    total_s = time.perf_counter() - start
    print(
        f"sustained: {accepted} messages accepted in {accepted_s:.1f} s "
        f"({accepted / accepted_s:,.0f}/s accepted, {accepted / total_s:,.0f}/s on Kafka acks=all)"
    )


async def main() -> None:
    """Run both phases against a fresh schema."""
    schema = "bench_ingest_" + uuid.uuid4().hex[:8]
    keys = Path(tempfile.mkdtemp()) / "keys"
    settings = IngestSettings(
        bus="kafka",
        kafka_bootstrap=KAFKA,
        database_url=PG,
        db_schema=schema,
        auth_key_dir=str(keys),
        outbox_poll_ms=50,
        log_level="WARNING",
        ingest_rate_per_s=1e6,
        ingest_rate_burst=1_000_000,
    )
    app = create_app(settings)
    _, token = mint(Keyring.load(keys), tenant_id="bench", scopes=["*"], ttl_s=3600)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b", timeout=60) as c:
                body = {
                    "kind": "whatsapp",
                    "name": "b",
                    "settings": {"default_region": "PL"},
                    "secrets": {"app_secret": SECRET, "verify_token": "v"},
                }
                r = await c.post(
                    "/v1/channels", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                path = r.json()["webhook_path"]
                for rate in RATES:
                    await fixed_rate(c, path, rate)
                await sustained(c, path, app)
    finally:
        admin = make_engine(PG)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
