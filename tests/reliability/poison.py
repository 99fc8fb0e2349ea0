"""Poison: 1 % malformed records on every topic a consumer group reads, while real work flows.

Each malformed record must land in `<topic>.dlq` once per consumer group, with the metadata
headers (topic, partition, offset, group, error, attempts, first failure); the good records
behind it must still be handled (nothing lost, nothing twice: the same comparison as the
fault run); and `switchboard dlq replay` must change nothing downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from tests.reliability import verify
from tests.reliability.chaos import open_session
from tests.reliability.stack import LocalStack
from tests.reliability.workload import Builder, Tally, build, publish_adapter, push, run_id

DLQ_META = (
    "topic",
    "partition",
    "offset",
    "key",
    "group",
    "error.class",
    "error.message",
    "attempts",
    "first_failure",
)
MARK = "sb-poison"


def malformed(n: int, tenant: str) -> bytes:
    """Three kinds of poison: not JSON, JSON but no CloudEvent, a CloudEvent of an unknown shape."""
    tag = f"{MARK}-{uuid.uuid4().hex}"
    if n % 3 == 0:
        return f"\x00{tag} this is not JSON {{".encode()
    if n % 3 == 1:
        return json.dumps({"hello": tag}).encode()
    envelope = {
        "id": tag,
        "source": "chaos",
        "type": "com.switchboard.message.received",
        "specversion": "1.0",
        "time": datetime.now(UTC).isoformat(),
        "subject": "x",
        "datacontenttype": "application/json",
        "tenantid": tenant,
        "data": {"nonsense": True},
    }
    return json.dumps(envelope).encode()


@dataclass
class Injected:
    """Where each poison record went: (topic, partition, offset) → value."""

    at: dict[tuple[str, int, int], bytes] = field(default_factory=dict)
    sent_at: dict[tuple[str, int, int], float] = field(default_factory=dict)

    def per_topic(self) -> Counter[str]:
        return Counter(t for t, _, _ in self.at)


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records on each topic so far (sum of partition end offsets)."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await c.start()
    try:
        out = {}
        for t in topics:
            parts = c.partitions_for_topic(t)
            if not parts:
                await c._client.force_metadata_update()
                parts = c.partitions_for_topic(t) or set()
            ends = await c.end_offsets([TopicPartition(t, p) for p in parts])
            out[t] = sum(ends.values())
        return out
    finally:
        await c.stop()


async def inject_while(
    bootstrap: str, tenant: str, topics: list[str], running: asyncio.Event, *, ratio: float
) -> tuple[Injected, dict[str, int]]:
    """Keep poison at `ratio` of each topic's records while `running` is set (and once after)."""
    injected = Injected()
    start = await end_offsets(bootstrap, topics)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    n = 0
    total: dict[str, int] = {}
    try:
        while True:
            last = not running.is_set()
            now = await end_offsets(bootstrap, topics)
            counts = injected.per_topic()
            for t in topics:
                total[t] = now[t] - start[t]
                good = total[t] - counts[t]
                # at least one per topic, then keep poison / all records at the ratio
                want = max(1, math.floor(good * ratio / (1 - ratio)))
                for _ in range(want - counts[t]):
                    n += 1
                    value = malformed(n, tenant)
                    key = f"{tenant}:poison-{n}".encode()
                    meta = await (await producer.send(t, value, key=key))
                    injected.at[(t, meta.partition, meta.offset)] = value
                    injected.sent_at[(t, meta.partition, meta.offset)] = time.time()
            if last:
                break
            await asyncio.sleep(1.0)
    finally:
        await producer.stop()
    return injected, total


@dataclass
class DlqFigures:
    """Per topic: poison injected, DLQ records found per group, metadata checks, delays."""

    per_topic: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    bad_meta: list[str] = field(default_factory=list)
    good_dead_lettered: int = 0
    max_delay_s: float = 0.0
    max_attempts: int = 0


async def read_dlq(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    try:
        parts = c.partitions_for_topic(topic)
        if not parts:
            await c._client.force_metadata_update()
            parts = c.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return []
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in tps if await c.position(tp) < end[tp]]:
            for recs in (await c.getmany(timeout_ms=500)).values():
                out.extend(recs)
        return out
    finally:
        # aiokafka's group-less consumer may surface its own cancelled internal task here
        with contextlib.suppress(asyncio.CancelledError):
            await c.stop()


async def check_dlqs(
    bootstrap: str, groups: dict[str, set[str]], injected: Injected, tenant: str
) -> DlqFigures:
    fig = DlqFigures()
    for topic, readers in sorted(groups.items()):
        wanted = {(p, o) for t, p, o in injected.at if t == topic}
        seen: dict[tuple[str, int, int], int] = Counter()
        for r in await read_dlq(bootstrap, topic + ".dlq"):
            h = {k: v.decode(errors="replace") for k, v in (r.headers or ())}
            if not all("dlq." + m in h for m in DLQ_META):
                fig.bad_meta.append(f"{topic}: headers {sorted(h)}")
                continue
            pos = (int(h["dlq.partition"]), int(h["dlq.offset"]))
            if pos not in wanted:
                if tenant.encode() in (r.value or b""):
                    fig.good_dead_lettered += 1
                continue
            if h["dlq.topic"] != topic or h["dlq.group"] not in readers:
                fig.bad_meta.append(f"{topic}: {h['dlq.topic']} {h['dlq.group']}")
            seen[(h["dlq.group"], *pos)] += 1
            fig.max_attempts = max(fig.max_attempts, int(h["dlq.attempts"]))
            delay = r.timestamp / 1000 - injected.sent_at[(topic, *pos)]
            fig.max_delay_s = max(fig.max_delay_s, delay)
        for g in readers:
            for p, o in wanted:
                if seen.get((g, p, o), 0) == 0:
                    fig.missing.append(f"{topic}[{p}]@{o} not dead-lettered by {g}")
        fig.per_topic[topic] = {
            "poison": len(wanted),
            "groups": len(readers),
            "dlq_records": sum(seen.values()),
            "dlq_twice": sum(1 for v in seen.values() if v > 1),
        }
    return fig


def replay_all(stack: LocalStack, topics: list[str]) -> dict[str, int]:
    """`switchboard dlq replay <topic>` for every topic; how many each republished."""
    out = {}
    for t in topics:
        line = stack.cli("dlq", "replay", t).splitlines()[-1]
        out[t] = int(line.split()[-1])
    return out


@dataclass
class PoisonResult:
    tenant: str
    records: dict[str, int]
    dlq: DlqFigures
    before: verify.Report
    replayed: dict[str, int]
    after: verify.Report
    seconds: float

    def figures(self) -> str:
        lines = [
            f"tenant {self.tenant}: poison on {len(self.records)} topics in {self.seconds:.0f} s",
            f"{'topic':<28}{'records':>9}{'poison':>8}{'ratio':>8}{'groups':>8}"
            f"{'in DLQ':>8}{'twice':>7}{'replayed':>10}",
        ]
        for t, row in sorted(self.dlq.per_topic.items()):
            total = self.records.get(t, 0)
            ratio = row["poison"] / total if total else 0.0
            lines.append(
                f"{t:<28}{total:>9}{row['poison']:>8}{ratio:>8.2%}{row['groups']:>8}"
                f"{row['dlq_records']:>8}{row['dlq_twice']:>7}{self.replayed.get(t, 0):>10}"
            )
        lines += [
            f"missing from DLQ: {len(self.dlq.missing)} {self.dlq.missing[:5]}",
            f"DLQ records without full metadata: {len(self.dlq.bad_meta)} {self.dlq.bad_meta[:3]}",
            f"good records of this run dead-lettered: {self.dlq.good_dead_lettered}",
            f"poison → DLQ: max {self.dlq.max_delay_s:.1f} s, max attempts {self.dlq.max_attempts}",
            "effects before replay:",
            self.before.table(),
            "effects after replaying every DLQ:",
            self.after.table(),
        ]
        return "\n".join(lines)


def consumer_groups() -> dict[str, set[str]]:
    """topic → consumer groups, from the services' own registrations (as `make manifests` does)."""
    from deploy.tools.gen import consumers

    out: dict[str, set[str]] = defaultdict(set)
    for c in consumers():
        for t in c.topics:
            out[t].add(c.group)
    return dict(out)


async def run_poison(
    stack: LocalStack,
    *,
    messages: int,
    ratio: float = 0.01,
    seed: int = 7,
    settle_timeout_s: float = 600,
) -> PoisonResult:
    """Real work plus `ratio` poison on every consumed topic; then replay every DLQ."""
    t0 = time.monotonic()
    groups = consumer_groups()
    topics = sorted(groups)
    rid = run_id()
    session = await open_session(stack, f"poison-{rid}")
    b = Builder(session.paths, stack.url("ingest"), rid, seed, session.tenant)
    work = build(
        b,
        messages=messages,
        orders=messages // 10,
        calls=messages // 10,
        adapter=messages // 10,
        run_no=0,
    )
    running = asyncio.Event()
    running.set()
    injector = asyncio.create_task(
        inject_while(stack.bootstrap, session.tenant, topics, running, ratio=ratio)
    )

    async def probe() -> object:
        conn = await verify.asyncpg.connect(stack.pg_dsn)
        try:
            return await verify.counts(conn, session.tenant)
        finally:
            await conn.close()

    async with session.client("ingest") as ingest, session.client("analytics") as analytics:
        tally = Tally()
        await asyncio.gather(
            push(ingest, work, concurrency=16, tally=tally),
            publish_adapter(stack.bootstrap, work.adapter, tally),
        )
        if tally.refused:
            raise AssertionError(f"requests refused: {tally.refused[:5]}")
        # downstream topics fill up after the webhooks: keep poisoning until the work is done
        await verify.wait_quiet(stack.bootstrap, stack.pg_dsn, probe, timeout_s=settle_timeout_s)
        running.clear()
        injected, records = await injector
        await verify.wait_quiet(stack.bootstrap, stack.pg_dsn, probe, timeout_s=settle_timeout_s)
        compare = partial(
            verify.compare,
            dsn=stack.pg_dsn,
            bootstrap=stack.bootstrap,
            tenant=session.tenant,
            exp=work.expected,
            analytics=analytics,
            started=work.started,
        )
        before = await compare()
        dlq = await check_dlqs(stack.bootstrap, groups, injected, session.tenant)
        replayed = await asyncio.to_thread(replay_all, stack, topics)
        await verify.wait_quiet(stack.bootstrap, stack.pg_dsn, probe, timeout_s=settle_timeout_s)
        after = await compare()
    return PoisonResult(
        session.tenant, records, dlq, before, replayed, after, time.monotonic() - t0
    )
