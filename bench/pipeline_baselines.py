"""Same-run baselines for the pipeline bench, on the stack's own broker and database.

Kafka's tools through deploy/local/kafka.sh (ProducerPerformance, ConsumerPerformance,
EndToEndLatency; 1 KiB records, acks=all) and raw PostgreSQL inserts with asyncpg into a plain
table (one commit per row, one executemany transaction, COPY).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import asyncpg

from bench.bus_throughput import parse_consumer, parse_producer
from tests.e2e.deployments import ROOT, LocalStack

KAFKA_SH = ROOT / "deploy" / "local" / "kafka.sh"
PAYLOAD = json.dumps({"text": "x" * 900, "channel": "whatsapp"})  # ~1 KiB, like a message row


def _kafka(stack: LocalStack, *args: str) -> str:
    done = subprocess.run(
        ["bash", str(KAFKA_SH), *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kafka.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def parse_e2e_latency(out: str) -> dict[str, float]:
    """EndToEndLatency's summary: average and percentiles in ms."""
    avg = re.search(r"Avg latency: ([\d.]+) ms", out)
    pct = re.search(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", out)
    if not avg or not pct:
        raise RuntimeError(f"no EndToEndLatency summary in:\n{out}")
    return {
        "avg_ms": float(avg.group(1)),
        "p50_ms": float(pct.group(1)),
        "p99_ms": float(pct.group(2)),
        "p999_ms": float(pct.group(3)),
    }


def kafka_baselines(stack: LocalStack, *, records: int, latency_records: int) -> dict[str, Any]:
    """Producer and consumer throughput and end-to-end latency of Kafka's own tools."""
    topic, lat_topic = f"bench-pipe-{int(time.time())}", f"bench-pipe-lat-{int(time.time())}"
    for t in (topic, lat_topic):
        _kafka(stack, "topics", "--create", "--topic", t, "--partitions", "3")
    produce = parse_producer(_kafka(stack, "perf-produce", str(records), "1024", topic))
    consume = parse_consumer(_kafka(stack, "perf-consume", str(records), topic), records)
    latency = parse_e2e_latency(_kafka(stack, "e2e-latency", lat_topic, str(latency_records)))
    return {"produce": produce, "consume": consume, "e2e_latency": latency}


async def postgres_baselines(stack: LocalStack, *, rows: int) -> dict[str, float]:
    """Rows/s into a plain table: a commit per row, one executemany transaction, and COPY."""
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, tenant text NOT NULL,"
            " payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.execute("TRUNCATE bench_raw")
        single = max(200, rows // 20)
        t0 = time.perf_counter()
        for i in range(single):  # autocommit: one transaction (and WAL flush) per row
            await conn.execute(
                "INSERT INTO bench_raw (tenant, payload) VALUES ($1, $2)", f"t{i % 7}", PAYLOAD
            )
        per_commit = single / (time.perf_counter() - t0)
        args = [(f"t{i % 7}", PAYLOAD) for i in range(rows)]
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.executemany("INSERT INTO bench_raw (tenant, payload) VALUES ($1, $2)", args)
        many = rows / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        await conn.copy_records_to_table("bench_raw", records=args, columns=["tenant", "payload"])
        copy = rows / (time.perf_counter() - t0)
        await conn.execute("DROP TABLE bench_raw")
    finally:
        await conn.close()
    return {"insert_per_commit": per_commit, "executemany": many, "copy": copy}
