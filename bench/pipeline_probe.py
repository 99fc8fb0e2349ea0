"""What the pipeline bench observes: ticket.assigned on Kafka, per-stage backlog, CPU and RSS.

- `Visibility` reads the three hops' topics from their end (no group) and keeps, per
  correlation id, when its message.received / message.attributed / ticket.assigned became
  visible (and ticket.assigned's own event time).
- `Stages` turns topic end offsets and consumer-group commits into the backlog in front of each
  stage: ingest's outbox (accepted, not yet on sb.messages.v1), crm (its group's lag), crm's
  outbox (handled, not yet on sb.messages.attributed.v1), routing (its group's lag).
- `Processes` reads utime+stime and VmRSS from /proc for the five services, the broker, every
  PostgreSQL process and the load generator itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.procstat import kafka_pid, machine_busy_s, postgres_pids, stat
from sbcontracts.topics import MESSAGES, MESSAGES_ATTRIBUTED, TICKETS
from sbkit.bus.kafka import KafkaBus
from tests.e2e.deployments import LocalStack

ASSIGNED = b"com.switchboard.ticket.assigned"
CRM_GROUP, ROUTING_GROUP = "crm.messages", "routing.messages"


HOPS = {  # hop name → (topic, event type that marks it)
    "on_kafka": (MESSAGES.name, b"com.switchboard.message.received"),
    "attributed": (MESSAGES_ATTRIBUTED.name, b"com.switchboard.message.attributed"),
    "assigned": (TICKETS.name, ASSIGNED),
}


@dataclass
class Visibility:
    """When each correlation id's event became visible on each hop's topic (read from the end,
    no group): message.received (ingest relayed it), message.attributed (crm done) and
    ticket.assigned (routing done); for `assigned` also the event's own time."""

    bootstrap: str
    seen: dict[str, dict[str, float]] = field(default_factory=lambda: {h: {} for h in HOPS})
    decided: dict[str, float] = field(default_factory=dict)  # ticket.assigned envelope time
    _task: asyncio.Task[None] | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        try:
            tps = []
            for topic, _ in HOPS.values():
                parts = await KafkaBus._partitions_of(consumer, topic)
                tps += [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:
                await consumer.position(tp)
            self._ready.set()
            hop_of = {(topic, kind): hop for hop, (topic, kind) in HOPS.items()}
            while True:
                batches = await consumer.getmany(timeout_ms=50, max_records=5000)
                now = time.time()
                for tp, records in batches.items():
                    for r in records:
                        hop = hop_of.get((tp.topic, dict(r.headers).get("ce_type", b"")))
                        if hop is not None:
                            self._note(hop, r.value, now)
        finally:
            await consumer.stop()

    def _note(self, hop: str, value: bytes, now: float) -> None:
        doc = json.loads(value)
        corr = doc.get("correlationid")
        if not corr or corr in self.seen[hop]:
            return
        self.seen[hop][corr] = now
        if hop == "assigned":
            self.decided[corr] = datetime.fromisoformat(doc["time"]).timestamp()


@dataclass
class Snapshot:
    """Cumulative counters of the pipeline's first three hops at one moment."""

    at: float
    on_kafka: int  # sb.messages.v1 end offsets
    crm_done: int  # crm's committed offsets on it
    attributed: int  # sb.messages.attributed.v1 end offsets
    routed: int  # routing's committed offsets on it

    def backlog(self, base: Snapshot, accepted: int) -> dict[str, int]:
        """Records waiting in front of each stage since `base`, given `accepted` messages."""
        d = {k: getattr(self, k) - getattr(base, k) for k in self.__dataclass_fields__}
        return {
            "ingest_outbox": accepted - d["on_kafka"],
            "crm_lag": d["on_kafka"] - d["crm_done"],
            "crm_outbox": d["crm_done"] - d["attributed"],
            "routing_lag": d["attributed"] - d["routed"],
            "in_flight": accepted - d["routed"],
        }


@dataclass
class Stages:
    """Reads end offsets and the two groups' commits with one consumer and one admin client."""

    stack: LocalStack
    _consumer: AIOKafkaConsumer | None = None
    _admin: AIOKafkaAdminClient | None = None
    _tps: dict[str, list[TopicPartition]] = field(default_factory=dict)

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=self.stack.bootstrap)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.stack.bootstrap)
        await self._consumer.start()
        await self._admin.start()
        for topic in (MESSAGES.name, MESSAGES_ATTRIBUTED.name):
            parts = await KafkaBus._partitions_of(self._consumer, topic)
            self._tps[topic] = [TopicPartition(topic, p) for p in sorted(parts)]

    async def stop(self) -> None:
        if self._consumer:
            await self._consumer.stop()
        if self._admin:
            await self._admin.close()

    async def _ends(self, topic: str) -> int:
        assert self._consumer is not None
        return sum((await self._consumer.end_offsets(self._tps[topic])).values())

    async def _committed(self, group: str, topic: str) -> int:
        assert self._admin is not None
        got = await self._admin.list_consumer_group_offsets(group, partitions=self._tps[topic])
        return sum(max(m.offset, 0) for m in got.values())

    async def snapshot(self) -> Snapshot:
        return Snapshot(
            at=time.time(),
            on_kafka=await self._ends(MESSAGES.name),
            crm_done=await self._committed(CRM_GROUP, MESSAGES.name),
            attributed=await self._ends(MESSAGES_ATTRIBUTED.name),
            routed=await self._committed(ROUTING_GROUP, MESSAGES_ATTRIBUTED.name),
        )


@dataclass
class Processes:
    """CPU seconds and RSS of the stack's processes (PostgreSQL: postmaster and its children)."""

    stack: LocalStack

    def groups(self) -> dict[str, list[int]]:
        out = {svc: [pid] for svc, pid in self.stack.pids().items()}
        out["kafka"] = [kafka_pid(self.stack.data_dir, self.stack.kafka_port)]
        out["postgres"] = postgres_pids(self.stack.data_dir, self.stack.pg_port)
        out["load generator"] = [os.getpid()]
        return out

    def sample(self) -> dict[str, tuple[float, int]]:
        """name → (cpu seconds so far, rss bytes now); "machine" is every core's busy time."""
        out: dict[str, tuple[float, int]] = {"machine": (machine_busy_s(), 0)}
        for name, pids in self.groups().items():
            stats = [stat(p) for p in pids]
            out[name] = (sum(s.cpu_s for s in stats), sum(s.rss for s in stats))
        return out


def cpu_share(
    before: dict[str, tuple[float, int]], after: dict[str, tuple[float, int]], seconds: float
) -> dict[str, dict[str, float]]:
    """Per process group: CPU in % of one core over the interval, and RSS in MiB at its end.

    PostgreSQL backends that ended within the interval are not counted (their CPU left with
    them); connection pools keep the services' backends alive, so this is small."""
    return {
        name: {
            "cpu_pct": max(0.0, (after[name][0] - before.get(name, (0.0, 0))[0]) / seconds * 100),
            "rss_mib": after[name][1] / 2**20,
        }
        for name in after
    }
