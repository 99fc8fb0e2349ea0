"""Bus throughput over real Kafka, beside Kafka's own perf tools on the same broker.

Run from the repo root against a running broker (`make bench` starts a dedicated one):

    SB_KAFKA_PORT=29092 SB_DATA_DIR=.data/bench python -m bench.bus_throughput

Per repetition, on fresh topics (same partition count for every client):

* Java produce   -- ProducerPerformance, N x 1 KiB, acks=all, idempotent, default batching
                    (`deploy/local/kafka.sh perf-produce`).
* Java consume   -- ConsumerPerformance over that topic, fresh group (`kafka.sh perf-consume`);
                    its nMsg.sec counts from start, so it includes the group join.
* kit produce    -- KafkaBus.publish() of N x 1 KiB OutgoingRecords with distinct keys, in
                    publish() calls of SB_BENCH_BATCH records; each call returns only once every
                    record in it is acknowledged (acks=all, idempotent).
* kit consume    -- a KafkaBus consumer-group subscription with a counting handler over that
                    topic, timed from bus.start() until every record was handled AND the group's
                    committed offsets equal the end offsets (checked with the admin client).
* Java produce with the kit's producer batching (batch.size=1 MiB, linger.ms=5) -- for
                    information only: the same client work as the kit with a comparable batch size.

Knobs (env): SB_BENCH_N records per run (500,000), SB_BENCH_REPS (3), SB_BENCH_BATCH records
per publish() call (2,000), SB_BENCH_PARTITIONS per topic (3, the broker default).

Medians of SB_BENCH_REPS repetitions are printed as a table; every raw figure and the machine
description go to $SB_DATA_DIR/bus_throughput.json. The order of the clients alternates between
repetitions so that neither side always runs on a warmer (or busier) broker. Exit status 0 means
the bench ran; whether the goal was met is printed, not asserted (this is a noisy 2-core box).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from importlib import metadata
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from sbkit.bus.kafka import KafkaBus
from sbkit.bus.ports import OutgoingRecord, Record, Subscription

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
PORT = int(os.environ.get("SB_KAFKA_PORT", "29092"))
BOOTSTRAP = f"127.0.0.1:{PORT}"
DATA_DIR = Path(os.environ.get("SB_DATA_DIR", REPO / ".data" / "bench")).resolve()
# where kafka.sh keeps the jars (its SB_CACHE_DIR default; not under the bench data dir)
KAFKA_LIBS = Path(os.environ.get("SB_CACHE_DIR", REPO / ".data" / "cache")).resolve() / "kafka-libs"
N = int(os.environ.get("SB_BENCH_N", "500000"))
REPS = int(os.environ.get("SB_BENCH_REPS", "3"))
BATCH = int(os.environ.get("SB_BENCH_BATCH", "2000"))
PARTITIONS = int(os.environ.get("SB_BENCH_PARTITIONS", "3"))
SIZE = 1024
GOAL_RATIO = 0.30
GOAL_RATE = 20_000.0
KIT_BATCHING = ["batch.size=1048576", "linger.ms=5", "max.request.size=2097152"]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- topics


async def create_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="bench")
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
        for name, code, *_ in resp.topic_errors:
            if code != 0:
                raise RuntimeError(f"cannot create topic {name}: error {code}")
    finally:
        await admin.close()
    # Wait until the topics are visible in metadata, so no client pays for the creation.
    probe = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, client_id="bench")
    await probe.start()
    try:
        for _ in range(100):
            await probe._client.force_metadata_update()  # no public metadata refresh
            if all(probe.partitions_for_topic(n) for n in names):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topics {names} not visible in metadata")
    finally:
        await probe.stop()


async def delete_topics(names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="bench")
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def end_offsets(topic: str) -> dict[TopicPartition, int]:
    c = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, client_id="bench")
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        return dict(await c.end_offsets(tps))
    finally:
        await c.stop()


# ---------------------------------------------------------------- Java tools


def _run(cmd: list[str]) -> str:
    env = dict(os.environ, SB_KAFKA_PORT=str(PORT), SB_DATA_DIR=str(DATA_DIR))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def parse_producer(out: str) -> dict[str, float]:
    """The final ProducerPerformance summary: records, records/s and p50."""
    # the final summary line: "N records sent, R records/sec (M MB/sec), ..."
    found = list(
        re.finditer(r"^(\d+) records sent, ([\d.]+) records/sec.*?(\d+) ms 50th", out, re.M)
    )
    if not found:
        raise RuntimeError(f"no ProducerPerformance summary in:\n{out}")
    m = found[-1]
    return {"records": float(m.group(1)), "rate": float(m.group(2)), "p50_ms": float(m.group(3))}


def java_produce(topic: str, n: int, extra: list[str] | None = None) -> dict[str, float]:
    if not extra:
        return parse_producer(_run(["bash", str(KAFKA_SH), "perf-produce", str(n), "1024", topic]))
    # kafka.sh perf-produce takes no extra producer properties: same command, more properties.
    libs = KAFKA_LIBS
    cmd = [
        os.environ.get("JAVA", "java"),
        "-cp",
        f"{libs}/*",
        f"-Dlog4j2.configurationFile={REPO / 'deploy/local/kafka/log4j2.properties'}",
        "org.apache.kafka.tools.ProducerPerformance",
        "--bootstrap-server",
        BOOTSTRAP,
        "--topic",
        topic,
        "--num-records",
        str(n),
        "--record-size",
        str(SIZE),
        "--throughput",
        "-1",
        "--command-property",
        "acks=all",
        "enable.idempotence=true",
        *extra,
    ]
    return parse_producer(_run(cmd))


def java_consume(topic: str, n: int) -> dict[str, float]:
    return parse_consumer(_run(["bash", str(KAFKA_SH), "perf-consume", str(n), topic]), n)


def parse_consumer(out: str, n: int) -> dict[str, float]:
    """The ConsumerPerformance CSV summary (fails when fewer than `n` records were read)."""
    lines = [ln for ln in out.splitlines() if ln.strip()]
    head = next(i for i, ln in enumerate(lines) if ln.startswith("start.time"))
    cols = [c.strip() for c in lines[head].split(",")]
    vals = [v.strip() for v in lines[head + 1].split(",")]
    row = dict(zip(cols, vals, strict=True))
    if int(row["data.consumed.in.nMsg"]) < n:
        raise RuntimeError(f"ConsumerPerformance read only {row['data.consumed.in.nMsg']} of {n}")
    return {
        "records": float(row["data.consumed.in.nMsg"]),
        "rate": float(row["nMsg.sec"]),
        "fetch_rate": float(row["fetch.nMsg.sec"]),
        "rebalance_ms": float(row["rebalance.time.ms"]),
    }


# ---------------------------------------------------------------- kit bus


async def kit_produce(topic: str, n: int) -> dict[str, float]:
    value = (os.urandom(SIZE // 2).hex()).encode()[:SIZE]
    records = [OutgoingRecord(topic, f"key-{i}", value) for i in range(n)]
    bus = KafkaBus(BOOTSTRAP, client_id="bench-produce")
    await bus.start()
    try:
        t0 = time.perf_counter()
        for i in range(0, n, BATCH):
            await bus.publish(records[i : i + BATCH])
        dt = time.perf_counter() - t0
    finally:
        await bus.stop()
    return {"records": float(n), "rate": n / dt, "seconds": dt, "batch": float(BATCH)}


async def kit_consume(topic: str, n: int, group: str) -> dict[str, float]:
    ends = await end_offsets(topic)
    if sum(ends.values()) < n:
        raise RuntimeError(f"{topic} holds {sum(ends.values())} records, expected {n}")
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="bench")
    await admin.start()
    handled = 0
    first_at = 0.0
    all_handled = asyncio.Event()

    async def count(_: Record) -> None:
        nonlocal handled, first_at
        if handled == 0:
            first_at = time.perf_counter()
        handled += 1
        if handled >= n:
            all_handled.set()

    bus = KafkaBus(BOOTSTRAP, client_id="bench-consume")
    bus.subscribe(Subscription(group=group, topics=[topic], handler=count))
    try:
        t0 = time.perf_counter()
        await bus.start()
        await asyncio.wait_for(all_handled.wait(), timeout=600)
        handled_at = time.perf_counter()
        while True:  # the commit-after-effect rule: done means committed
            committed = await admin.list_consumer_group_offsets(group)
            if all(committed.get(tp) and committed[tp].offset >= end for tp, end in ends.items()):
                break
            await asyncio.sleep(0.01)
        committed_at = time.perf_counter()
        dt = committed_at - t0
    finally:
        await bus.stop()
        await admin.close()
    return {
        "records": float(handled),
        "rate": n / dt,
        "seconds": dt,
        "fetch_rate": n / (handled_at - first_at) if handled_at > first_at else 0.0,
        "join_ms": (first_at - t0) * 1000,
        "commit_wait_ms": (committed_at - handled_at) * 1000,
    }


# ---------------------------------------------------------------- the run


def machine() -> dict[str, Any]:
    java = subprocess.run(
        [os.environ.get("JAVA", "java"), "-version"], capture_output=True, text=True, check=False
    ).stderr.splitlines()
    jars = sorted(KAFKA_LIBS.glob("kafka-clients-*.jar"))
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aiokafka": metadata.version("aiokafka"),
        "java": java[0] if java else "",
        "kafka_clients": jars[0].name if jars else "",
        "loadavg_start": os.getloadavg(),
    }


async def one_rep(rep: int, run_id: str) -> dict[str, dict[str, float]]:
    jt, kt, tt = (f"bench-{run_id}-{rep}-{s}" for s in ("java", "kit", "javatuned"))
    await create_topics([jt, kt, tt])
    out: dict[str, dict[str, float]] = {}
    steps: list[tuple[str, Callable[[], Coroutine[Any, Any, dict[str, float]]]]] = []

    async def jp() -> dict[str, float]:
        return await asyncio.to_thread(java_produce, jt, N)

    async def jc() -> dict[str, float]:
        return await asyncio.to_thread(java_consume, jt, N)

    async def kp() -> dict[str, float]:
        return await kit_produce(kt, N)

    async def kc() -> dict[str, float]:
        return await kit_consume(kt, N, f"bench-{run_id}-{rep}-group")

    async def tp() -> dict[str, float]:
        return await asyncio.to_thread(java_produce, tt, N, KIT_BATCHING)

    java = [("java_produce", jp), ("java_consume", jc)]
    kit = [("kit_produce", kp), ("kit_consume", kc)]
    steps = (java + kit if rep % 2 == 0 else kit + java) + [("java_produce_kit_batching", tp)]
    try:
        for name, step in steps:
            out[name] = await step()
            log(f"rep {rep + 1}/{REPS} {name:26} {out[name]['rate']:>10,.0f} records/s")
    finally:
        await delete_topics([jt, kt, tt])
    return out


def fmt(x: float) -> str:
    return f"{x:,.0f}/s"


async def main() -> int:
    info = machine()
    run_id = time.strftime("%Y%m%d%H%M%S")
    log(
        f"broker {BOOTSTRAP}, N={N:,} x {SIZE} B, {PARTITIONS} partitions, {REPS} reps, "
        f"kit publish() batch {BATCH:,}, nproc {info['nproc']}"
    )
    # Warm-up (not recorded): the broker's JIT and page cache should not favour whoever runs 2nd.
    warm = max(N // 4, 1000)
    wj, wk = f"bench-{run_id}-warm-java", f"bench-{run_id}-warm-kit"
    await create_topics([wj, wk])
    try:
        await asyncio.to_thread(java_produce, wj, warm)
        await kit_produce(wk, warm)
    finally:
        await delete_topics([wj, wk])
    log("warm-up done")

    reps = [await one_rep(r, run_id) for r in range(REPS)]
    info["loadavg_end"] = os.getloadavg()

    def med(key: str, field: str = "rate") -> float:
        return statistics.median(r[key][field] for r in reps)

    rows: list[dict[str, Any]] = []
    for metric, kit_key, java_key, goal in (
        ("produce (acks=all, idempotent)", "kit_produce", "java_produce", True),
        ("consume + commit", "kit_consume", "java_consume", True),
        ("produce vs Java w/ kit batching", "kit_produce", "java_produce_kit_batching", False),
    ):
        k, j = med(kit_key), med(java_key)
        ratio = k / j
        met = (ratio >= GOAL_RATIO and k >= GOAL_RATE) if goal else None
        rows.append(
            {"metric": metric, "kit": k, "java": j, "ratio": ratio, "goal_met": met,
             "kit_all": [r[kit_key]["rate"] for r in reps],
             "java_all": [r[java_key]["rate"] for r in reps]}
        )  # fmt: skip

    print()
    print(
        f"Bus throughput over real Kafka ({BOOTSTRAP}): {N:,} x {SIZE} B records, "
        f"{PARTITIONS} partitions, median of {REPS} reps, nproc={info['nproc']}"
    )
    print(
        f"kit: KafkaBus.publish() in calls of {BATCH:,} records (each waits for acks=all); "
        "consume = group subscription, handled AND committed"
    )
    print()
    hdr = (
        f"| {'metric':32} | {'kit bus':>12} | {'Java tool':>12} | {'ratio':>6} | {'goal met':10} |"
    )
    print(hdr)
    print("|" + "|".join("-" * (len(c)) for c in hdr.split("|")[1:-1]) + "|")
    for r in rows:
        label = "n/a (info)" if r["goal_met"] is None else ("yes" if r["goal_met"] else "NO")
        print(
            f"| {r['metric']:32} | {fmt(r['kit']):>12} | {fmt(r['java']):>12} | "
            f"{r['ratio']:>6.0%} | {label:10} |"
        )
    print()
    print("all reps (records/s):")
    for key in reps[0]:
        print(f"  {key:26} " + "  ".join(f"{r[key]['rate']:>9,.0f}" for r in reps))
    kc = [r["kit_consume"] for r in reps]
    jc = [r["java_consume"] for r in reps]
    print(
        f"  consume detail: kit join {statistics.median(x['join_ms'] for x in kc):,.0f} ms, "
        f"kit handle-phase {statistics.median(x['fetch_rate'] for x in kc):,.0f}/s; "
        f"Java rebalance {statistics.median(x['rebalance_ms'] for x in jc):,.0f} ms, "
        f"Java fetch-phase {statistics.median(x['fetch_rate'] for x in jc):,.0f}/s"
    )
    goals = [r["goal_met"] for r in rows if r["goal_met"] is not None]
    print()
    print(
        f"goal (kit >= {GOAL_RATIO:.0%} of the Java tool and >= {GOAL_RATE:,.0f}/s each way): "
        + ("MET" if all(goals) else "NOT MET")
    )

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    out = DATA_DIR / "bus_throughput.json"
    doc = {
        "run_id": run_id,
        "bootstrap": BOOTSTRAP,
        "records": N,
        "record_size": SIZE,
        "partitions": PARTITIONS,
        "reps": REPS,
        "kit_publish_batch": BATCH,
        "java_kit_batching_props": KIT_BATCHING,
        "goal": {"ratio": GOAL_RATIO, "rate": GOAL_RATE},
        "machine": info,
        "summary": rows,
        "raw": reps,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"raw figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
