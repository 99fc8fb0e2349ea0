"""The whole pipeline on the local stack: webhook accepted → ticket.assigned, and sustained rate.

    python -m bench.pipeline          (make bench runs it; it starts and stops its own stack)

1. `deploy/local/stack.sh up` on a fresh data dir of its own: PostgreSQL, Kafka and the five
   services as separate processes (bench settings below, passed through the environment).
2. Baselines on that broker and database: Kafka's ProducerPerformance, ConsumerPerformance and
   EndToEndLatency (1 KiB, acks=all) and raw PostgreSQL inserts (bench/pipeline_baselines.py).
3. Load (bench/pipeline_load.py): signed provider webhooks and API calls, mixed channels and
   languages, 30 % repeat customers, each phase on a fresh tenant with enough online agents.
   - warm-up; then the latency phase: SB_BENCH_LATENCY_RATE msg/s (300) for
     SB_BENCH_LATENCY_SECONDS (20): accept → ticket.assigned visible on Kafka, p50/p95/p99 over
     the messages that open a case, plus the same split per hop;
   - steps: SB_BENCH_STEPS msg/s (100,200,300,500,750,1000,1500), SB_BENCH_STEP_SECONDS (12)
     each; a rate is sustained when ≥ 95 % is accepted and at the step's end fewer than two
     seconds' worth of messages are still between ingest and routing (the consumer groups' lag
     plus the outboxes); the first unsustained step ends the series.
4. CPU (% of one core) and RSS per service process, broker, PostgreSQL and load generator per
   phase; the figures as ratios of the baselines; the bottleneck where a goal is missed.
   JSON and a PNG chart go to SB_BENCH_OUT (.data/bench).

Ports: SB_PIPELINE_KAFKA_PORT (29192), SB_PIPELINE_PG_PORT (25532), SB_PIPELINE_BASE_PORT
(28100: services on +1..+5), data in SB_PIPELINE_DATA_DIR (.data/bench-pipeline). Figures are
printed, never asserted: this is a shared, noisy 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.pipeline_baselines import kafka_baselines, postgres_baselines
from bench.pipeline_load import Load, Sent, agents_for, provision, send_at_rate
from bench.pipeline_probe import (
    CRM_GROUP,
    HOPS,
    ROUTING_GROUP,
    Processes,
    Snapshot,
    Stages,
    Visibility,
    cpu_share,
)
from bench.pipeline_report import report
from tests.e2e.deployments import ROOT, LocalStack


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


OUT = Path(_env("SB_BENCH_OUT", str(ROOT / ".data" / "bench")))
LATENCY_RATE = float(_env("SB_BENCH_LATENCY_RATE", "300"))
LATENCY_SECONDS = float(_env("SB_BENCH_LATENCY_SECONDS", "20"))
STEPS = [float(r) for r in _env("SB_BENCH_STEPS", "100,200,300,500,750,1000,1500").split(",")]
STEP_SECONDS = float(_env("SB_BENCH_STEP_SECONDS", "12"))
DRAIN_SECONDS = float(_env("SB_BENCH_DRAIN_SECONDS", "60"))
# Bench settings of the stack's services: the per-tenant ingest rate limit (200/s by default)
# would refuse the load itself; WARNING logs keep five services from writing a line per request.
STACK_SETTINGS = {
    "SB_INGEST_RATE_PER_S": "1000000",
    "SB_INGEST_RATE_BURST": "1000000",
    "SB_LOG_LEVEL": "WARNING",
    "SB_KAFKA_HEAP": "1g",
}


def log(msg: str) -> None:
    print(f"[pipeline {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile (0 < q < 1) in milliseconds."""
    if len(values) < 2:
        return values[0] * 1000 if values else None
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1] * 1000


def latencies(sent: Sent, seen: Visibility) -> dict[str, Any]:
    """Accept → each hop's topic for the messages that open a case (missing ones counted), and
    each hop's own share: ingest (accept → on Kafka), crm (→ attributed), routing (→ assigned)."""
    opening = sorted(sent.opening)
    at = {hop: seen.seen[hop] for hop in HOPS}
    out: dict[str, Any] = {"opening": len(opening)}
    for hop in HOPS:
        got = [at[hop][c] - sent.accepted[c] for c in opening if c in at[hop]]
        out[hop] = {
            "n": len(got),
            "missing": len(opening) - len(got),
            **{f"p{q}": pct(got, q / 100) for q in (50, 95, 99)},
            "samples_ms": [round(x * 1000, 1) for x in got],
        }
    stages = {"ingest": ("", "on_kafka"), "crm": ("on_kafka", "attributed"),
              "routing": ("attributed", "assigned")}  # fmt: skip
    out["hops"] = {}
    for svc, (a, b) in stages.items():
        full = [c for c in opening if c in at[b] and (not a or c in at[a])]
        got = [at[b][c] - (at[a][c] if a else sent.accepted[c]) for c in full]
        out["hops"][svc] = {f"p{q}": pct(got, q / 100) for q in (50, 99)}
    decided = [seen.decided[c] - sent.accepted[c] for c in opening if c in seen.decided]
    out["decided_p99"] = pct(decided, 0.99)
    return out


class Bench:
    """One run: the stack, its probes, and the phases."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.seen = Visibility(stack.bootstrap)
        self.stages = Stages(stack)
        self.procs = Processes(stack)
        self.client = httpx.AsyncClient(
            base_url=stack.url("ingest"),
            timeout=60,
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
        )

    async def drain(
        self, base: Snapshot, sent: Sent, *, wait_for_assigned: bool, limit_s: float
    ) -> float | None:
        """Seconds until nothing of this phase is in flight (None: not within `limit_s`)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit_s:
            snap = await self.stages.snapshot()
            done = snap.backlog(base, len(sent.accepted))["in_flight"] <= 0
            if wait_for_assigned:
                done = done and all(c in self.seen.seen["assigned"] for c in sent.opening)
            if done:
                return time.monotonic() - t0
            await asyncio.sleep(0.5)
        return None

    async def quiet(self) -> int:
        """Wait (bounded) until crm and routing have caught up; the lag left over."""
        t0, lag = time.monotonic(), 0
        while time.monotonic() - t0 < DRAIN_SECONDS:
            lags = await self.stack.group_lags([CRM_GROUP, ROUTING_GROUP])
            lag = sum(n for per_topic in lags.values() for n in per_topic.values())
            if lag == 0:
                break
            await asyncio.sleep(0.5)
        return lag

    async def phase(self, name: str, rate: float, seconds: float) -> dict[str, Any]:
        """Send at `rate` for `seconds` on a fresh tenant; what each stage did meanwhile."""
        target = await provision(self.stack, agents=agents_for(rate, seconds))
        lag_at_start = await self.quiet()
        load, sent = Load(target), Sent()
        base, cpu0 = await self.stages.snapshot(), self.procs.sample()
        series: list[dict[str, float]] = []
        sender = asyncio.create_task(
            send_at_rate(self.client, load, sent, rate=rate, seconds=seconds, phase=name)
        )
        while not sender.done():
            await asyncio.wait([sender], timeout=1.0)
            snap = await self.stages.snapshot()
            series.append({"t": snap.at - base.at, **snap.backlog(base, len(sent.accepted))})
        end, cpu1 = await self.stages.snapshot(), self.procs.sample()
        elapsed = end.at - base.at
        backlog = end.backlog(base, len(sent.accepted))
        lags = await self.stack.group_lags()
        drained = await self.drain(
            base,
            sent,
            wait_for_assigned=name == "latency",
            limit_s=DRAIN_SECONDS if name != "warmup" else 20,
        )
        accepted = len(sent.accepted)
        result = {
            "name": name,
            "rate": rate,
            "seconds": seconds,
            "elapsed_s": elapsed,
            "accepted": accepted,
            "accepted_rate": accepted / max(sent.ended - sent.started, 1e-9),
            "failures": {str(k): v for k, v in sent.failures.items()},
            "routed_rate": (end.routed - base.routed) / elapsed,
            "backlog_end": backlog,
            "group_lag_end": lags,
            "drained_s": drained,
            "lag_at_start": lag_at_start,
            "series": series,
            "cpu": cpu_share(cpu0, cpu1, elapsed),
            "latency": latencies(sent, self.seen),
        }
        result["sustained"] = accepted >= 0.95 * rate * seconds and backlog["in_flight"] <= 2 * rate
        log(
            f"{name}: {rate:.0f}/s offered, {result['accepted_rate']:.0f}/s accepted, "
            f"{result['routed_rate']:.0f}/s routed, in flight at end {backlog['in_flight']}, "
            f"drained in {drained if drained is None else round(drained, 1)} s"
        )
        return result

    async def run(self) -> dict[str, Any]:
        await self.seen.start()
        await self.stages.start()
        try:
            await self.phase("warmup", 50, 5)
            latency = await self.phase("latency", LATENCY_RATE, LATENCY_SECONDS)
            steps = []
            for rate in STEPS:
                steps.append(await self.phase(f"step{rate:.0f}", rate, STEP_SECONDS))
                if not steps[-1]["sustained"] or steps[-1]["drained_s"] is None:
                    break
            return {"latency": latency, "steps": steps}
        finally:
            await self.client.aclose()
            await self.stages.stop()
            await self.seen.stop()


async def main() -> int:
    stack = LocalStack(
        data_dir=Path(_env("SB_PIPELINE_DATA_DIR", str(ROOT / ".data" / "bench-pipeline"))),
        kafka_port=int(_env("SB_PIPELINE_KAFKA_PORT", "29192")),
        pg_port=int(_env("SB_PIPELINE_PG_PORT", "25532")),
        base_port=int(_env("SB_PIPELINE_BASE_PORT", "28100")),
        settings=STACK_SETTINGS,
    )
    started = time.monotonic()
    log(f"stack up (data {stack.data_dir}, kafka :{stack.kafka_port}, pg :{stack.pg_port})")
    try:
        await asyncio.to_thread(stack.up)
        log("baselines: Kafka tools, PostgreSQL inserts")
        kafka = await asyncio.to_thread(
            kafka_baselines, stack, records=100_000, latency_records=1_000
        )
        pg = await postgres_baselines(stack, rows=20_000)
        results = await Bench(stack).run()
    finally:
        log("stack down")
        await asyncio.to_thread(stack.down)
    doc = {
        "baselines": {"kafka": kafka, "postgres": pg},
        **results,
        "settings": STACK_SETTINGS,
        "machine": {"nproc": os.cpu_count(), "loadavg_end": os.getloadavg()},
        "runtime_s": time.monotonic() - started,
    }
    report(doc, OUT)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
