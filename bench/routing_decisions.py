"""routing benchmark over real Kafka and PostgreSQL: decision latency and sustained throughput.

    SB_KAFKA_PORT=19092 SB_PG_PORT=15432 python -m bench.routing_decisions

Bulk-loads (SQL `generate_series`, printed with its duration) SB_BENCH_AGENTS agents (1,000,
online, 1-2 languages, skills), SB_BENCH_QUEUES queues (100, ordered filters on category, language
and tier, skill needs that relax, SLA targets, a fallback) and SB_BENCH_OPEN open cases (100,000:
half owned, the rest waiting in a language nobody speaks), with a message and an SLA timer each.

- handler: the consumer's batch handler called in-process on SB_BENCH_HANDLER (1,000) messages in
  batches of 100, then of 10 (SB_BENCH_HANDLER_BATCHES), SB_BENCH_REPS times after a warm-up
  run: CPU and SQL statements per message of the decision path alone (no Kafka, no relay), the
  figure the machine's load moves least.

Then the routing service runs as its own process, as deployed (`python -m bench.routing_server`:
`python -m routing` reading `message.attributed` from a topic of the bench's own, 6 partitions,
the product default; HTTP on SB_BENCH_SERVICE_PORT, default 28041, and the ports after it) with
its normal consumers, outbox relay and timer poller, while this process publishes and observes.
The Kafka phases run once per replica count in SB_BENCH_REPLICAS (default "1,2": one process,
then two processes of one consumer group sharing the partitions — production's minimum, see
deploy/overlays/prod — on the same two cores). SB_BENCH_IN_PROCESS=1
runs the service inside this process instead (the harness before 22 Nov: service, producer and
`ticket.assigned` observer on one event loop), for comparing figures with older runs.

- latency: messages published at SB_BENCH_RATE/s (500) for SB_BENCH_SECONDS (5 s); each new
  case's latency is from the attributed message's Kafka timestamp to its `ticket.assigned`
  record's Kafka timestamp (the relay publishes it after the decision committed), so it covers
  the consumer's fetch, the decision, the commit and the outbox relay; p50/p99 printed.
- throughput: SB_BENCH_BURST (5,000) messages published at once; messages/s from the first
  to the last one applied (all committed), repeated SB_BENCH_REPS (3) times, median printed.

Each Kafka phase prints CPU per message from /proc: the service process, PostgreSQL (postmaster
and its live backends, `bench.procstat`; needs SB_DATA_DIR as `make bench` sets it), the broker,
and this bench process (producer and observer; with SB_BENCH_IN_PROCESS=1 the service too).

90 % of messages come from new customers (a new case, classified, queued, SLA-timed, assigned),
10 % from customers with an open case (appended, reclassified). Figures are printed, never
asserted: this is a shared 2-core machine, broker, database and service on the same cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import delete, event, text

from bench.procstat import servers_cpu, stat
from routing.adapters import driver, orm
from routing.bootstrap import RoutingService, bootstrap
from routing.config import RoutingSettings
from routing.entrypoints.consumers import batch_handlers, handlers
from sbcontracts.catalog import decode, encode
from sbcontracts.envelope import new_event
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.crm import MessageAttributed
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.topics import ALL_TOPICS, MESSAGES_ATTRIBUTED, TICKETS, partition_key
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import Record
from sbkit.consumer import batch_handler
from sbkit.db.engine import make_engine
from sbkit.serve import freeze_startup_objects, tune_collector

AGENTS = int(os.environ.get("SB_BENCH_AGENTS", "1000"))
QUEUES = int(os.environ.get("SB_BENCH_QUEUES", "100"))
OPEN = int(os.environ.get("SB_BENCH_OPEN", "100000"))
RATE = int(os.environ.get("SB_BENCH_RATE", "500"))
SECONDS = int(os.environ.get("SB_BENCH_SECONDS", "5"))
BURST = int(os.environ.get("SB_BENCH_BURST", "5000"))
DRAIN_S = float(os.environ.get("SB_BENCH_DRAIN_S", "300"))
REPS = int(os.environ.get("SB_BENCH_REPS", "3"))
HANDLER = int(os.environ.get("SB_BENCH_HANDLER", "1000"))
# batch sizes of the in-process handler: 100 as a burst's polls give, 10 as 500/s's do
HANDLER_BATCHES = [int(n) for n in os.environ.get("SB_BENCH_HANDLER_BATCHES", "100,10").split(",")]
IN_PROCESS = os.environ.get("SB_BENCH_IN_PROCESS", "0") == "1"
REPLICAS = [int(n) for n in os.environ.get("SB_BENCH_REPLICAS", "1,2").split(",")]
SERVICE_PORT = int(os.environ.get("SB_BENCH_SERVICE_PORT", "28041"))
KAFKA_PORT, PG_PORT = (
    os.environ.get("SB_KAFKA_PORT", "19092"),
    os.environ.get("SB_PG_PORT", "15432"),
)
DATA_DIR = Path(os.environ.get("SB_DATA_DIR", ".data"))
KAFKA = f"127.0.0.1:{KAFKA_PORT}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/switchboard"
TENANT = "bench"
CATEGORIES = ("delivery_delay", "damaged_parcel", "returns", "billing", "technical", "account")
LANGUAGES = ("pl", "en", "ru", "ro")
TIERS = ("gold", "silver", "bronze")
TEXTS = {
    "pl": ("Gdzie jest moja paczka? Zamówienie się spóźnia.", "Paczka przyszła uszkodzona"),
    "en": ("Where is my parcel? It is late again!", "I want to return these shoes"),
    "ru": ("Где моя посылка? Заказ опаздывает.", "Посылка пришла повреждённой"),
    "ro": ("Unde este coletul meu? Comanda întârzie.", "Vreau să returnez produsul"),
}


def _queue_config(n: int) -> tuple[str, dict[str, Any]]:
    """Queue n's name and config: one (category, language, tier) filter, a skill, SLA, fallback."""
    cat = CATEGORIES[n % len(CATEGORIES)]
    lang = LANGUAGES[(n // len(CATEGORIES)) % len(LANGUAGES)]
    tier = TIERS[(n // (len(CATEGORIES) * len(LANGUAGES))) % len(TIERS)]
    sla = {"first_response_s": 3600, "next_response_s": 7200, "resolution_s": 86400}
    return f"q{n:03d}", {
        "filters": [{"categories": [cat], "languages": [lang], "tiers": [tier]}],
        "skills": [{"skill": cat, "level": 3}],
        "relax": [{"after_s": 120, "lower_by": 1}, {"after_s": 600, "lower_by": 2}],
        "sla": {"normal": sla, "high": sla, "urgent": sla},
        "fallback_queue": "catchall",
        "escalate_after_s": 1800,
    }


async def load_fixture(engine: Any) -> None:
    """Queues, agents and open cases with their messages and timers, in a few SQL statements."""
    queues = [_queue_config(n) for n in range(QUEUES - 1)]
    rows = [
        {"id": qid, "position": n + 1, "config": json.dumps(cfg)}
        for n, (qid, cfg) in enumerate(queues)
    ]
    rows.append({"id": "catchall", "position": QUEUES, "config": json.dumps({})})
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO queues (id, tenant_id, name, position, policy, config)"
                " VALUES (:id, 'bench', :id, :position, 'longest_idle', CAST(:config AS json))"
            ),
            rows,
        )
        # agents: 2 languages each (round robin over 4), a skill level 1-5 on every category
        cats = ",".join(f"'{c}'" for c in CATEGORIES)
        await conn.execute(
            text(f"""
            INSERT INTO agents (id, tenant_id, name, presence, capacity, load, skills, languages,
                                queues, queue_keys, idle_since, last_assigned_at, presence_at)
            SELECT 'a' || g, 'bench', 'agent ' || g, 'online', 1000, 0,
                   (SELECT json_object_agg(c, 1 + (g * 7 + i * 3) % 5)
                      FROM unnest(ARRAY[{cats}]) WITH ORDINALITY AS s(c, i)),
                   json_build_object((ARRAY['pl','en','ru','ro'])[1 + g % 4], 5,
                                     (ARRAY['pl','en','ru','ro'])[1 + (g + 1) % 4], 3),
                   '[]'::json, '', now() - (g || ' seconds')::interval, NULL, now()
            FROM generate_series(0, {AGENTS - 1}) AS g
            """)
        )
        # open cases: half owned by agents (10 units each), the rest waiting in a skill queue
        await conn.execute(
            text(f"""
            INSERT INTO tickets (id, tenant_id, customer_id, kind, status, cycle, queue_id,
                agent_id, last_agent_id, weight, channel, recipient, category, sentiment,
                priority, language, confidence, created_at, updated_at, queued_at,
                cycle_started_at, awaiting_since, paused_ms, last_provider_message_id)
            SELECT 'fx-' || g, 'bench', 'fc-' || g, 'case',
                   (ARRAY['new','open','pending'])[1 + g % 3], 1,
                   'q' || lpad((g % {QUEUES - 1})::text, 3, '0'),
                   CASE WHEN g % 10 < 5 THEN 'a' || (g % {AGENTS}) END,
                   CASE WHEN g % 10 < 5 THEN 'a' || (g % {AGENTS}) END,
                   10, 'email',
                   json_build_object('kind', 'email', 'value', 'fc-' || g || '@x.test'),
                   (ARRAY[{cats}])[1 + g % 6], 'neutral', 'normal', 'en', 1.0,
                   now() - interval '1 hour', now() - interval '1 hour',
                   now() - interval '1 hour', now() - interval '1 hour',
                   now() - interval '1 hour', 0, 'fp-' || g
            FROM generate_series(0, {OPEN - 1}) AS g
            """)
        )
        # the waiting half: ask for a skill nobody has, so they stay waiting (a real backlog)
        await conn.execute(
            text("UPDATE tickets SET language = 'xx' WHERE agent_id IS NULL AND id LIKE 'fx-%'")
        )
        await conn.execute(
            text("""
            UPDATE agents a SET load = s.units, idle_since = NULL,
                   last_assigned_at = now() - interval '30 minutes'
            FROM (SELECT agent_id, sum(weight) AS units FROM tickets
                  WHERE agent_id IS NOT NULL GROUP BY agent_id) s
            WHERE a.id = s.agent_id AND a.tenant_id = 'bench'
            """)
        )
        await conn.execute(
            text(f"""
            INSERT INTO ticket_messages (tenant_id, ticket_id, message_id, origin_ticket_id,
                direction, channel, thread_id, text, at)
            SELECT 'bench', 'fx-' || g, 'fm-' || g, 'fx-' || g, 'inbound', 'email',
                   '<fm-' || g || '@x.test>', 'where is my parcel', now() - interval '1 hour'
            FROM generate_series(0, {OPEN - 1}) AS g
            """)
        )
        await conn.execute(
            text(f"""
            INSERT INTO timers (tenant_id, ticket_id, kind, metric, cycle, due_at, fire_at, done)
            SELECT 'bench', 'fx-' || g, 'sla_breached', 'resolution', 1,
                   now() + interval '23 hours', now() + interval '23 hours', false
            FROM generate_series(0, {OPEN - 1}) AS g
            """)
        )
    async with engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        await conn.execute(text("ANALYZE"))


def message(n: int, topic: str, tag: str) -> tuple[bytes, bytes]:
    """An attributed message: a new customer (90 %) or one with an open case (10 %)."""
    rnd = random.Random(n)
    lang = rnd.choice(LANGUAGES)
    if rnd.random() < 0.1:
        customer = f"fc-{rnd.randrange(OPEN)}"
    else:
        customer = f"{tag}-c{n}"
    msg = MessageReceived(
        message_id=f"{tag}-m{n}",
        channel=Channel.EMAIL,
        provider="bench",
        provider_message_id=f"{tag}-p{n}",
        received_at=datetime.now(UTC),
        sender=Handle(kind=HandleKind.EMAIL, value=f"{customer}@x.test"),
        text=rnd.choice(TEXTS[lang]),
        body="",
        language=lang if rnd.random() < 0.5 else None,
    )
    data = MessageAttributed(
        message=msg, customer_id=customer, customer_language=lang, customer_tier=rnd.choice(TIERS)
    )
    event = new_event(data, tenant_id=TENANT, source="bench")
    return partition_key(TENANT, customer).encode(), encode(event)


class Assigned:
    """Reads ticket.assigned records from the end of the tickets topic: causation id → Kafka time."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self._consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start reading from the current end."""
        await self._consumer.start()
        tps = [TopicPartition(TICKETS.name, p) for p in range(TICKETS.partitions)]
        self._consumer.assign(tps)
        await self._consumer.seek_to_end(*tps)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for recs in (await self._consumer.getmany(timeout_ms=100)).values():
                for r in recs:
                    if dict(r.headers).get("ce_type") == b"com.switchboard.ticket.assigned":
                        # the envelope's one attribute, not the whole event validated: this
                        # process shares the 2 cores with the service it measures
                        causation = json.loads(r.value).get("causationid")
                        if causation:
                            self.seen[causation] = r.timestamp

    async def stop(self) -> None:
        """Stop reading."""
        if self._task:
            self._task.cancel()
        await self._consumer.stop()


def pct(samples: list[float], q: int) -> float:
    """A percentile of samples (already in ms)."""
    return statistics.quantiles(samples, n=100)[q - 1] if len(samples) > 1 else samples[0]


class Usage:
    """CPU seconds per message between two points: the service process (when it runs as its
    own), PostgreSQL, the broker, and this bench process (which in the in-process harness holds
    the service too)."""

    def __init__(self, service_pids: list[int]) -> None:
        self._pids = service_pids
        self._start = self._now()

    def _now(self) -> dict[str, float]:
        out = {"service": sum(stat(p).cpu_s for p in self._pids)} if self._pids else {}
        out |= servers_cpu(DATA_DIR, KAFKA_PORT, PG_PORT)
        out["bench" if self._pids else "bench + service"] = time.process_time()
        return out

    def per_message(self, messages: int) -> dict[str, float]:
        """ms of CPU per message of each part since this was made."""
        now = self._now()
        return {k: (v - self._start[k]) * 1000 / max(messages, 1) for k, v in now.items()}


def cpu_text(per_message: dict[str, float]) -> str:
    """`service 0.81, PostgreSQL 0.62, ... ms`."""
    return ", ".join(f"{k} {v:.2f}" for k, v in per_message.items()) + " ms"


async def applied(engine: Any, tag: str) -> int:
    """How many bench messages with `tag` routing has applied (committed)."""
    async with engine.connect() as conn:
        q = text("SELECT count(*) FROM ticket_messages WHERE message_id LIKE :p")
        return int((await conn.execute(q, {"p": f"{tag}-m%"})).scalar_one())


class Committed:
    """How far the service's consumer group has committed on the bench topic: an offset is
    committed only after its batch's transaction is, so a record below it is applied. Polling
    this (one request to the broker) instead of counting rows keeps the bench's own load off
    PostgreSQL (a count over the growing `ticket_messages` every 0.1 s cost ≈ 7 ms of its CPU
    per poll with 100,000 rows: 7-10 % of a core, while it measures)."""

    def __init__(self, group: str, topic: str) -> None:
        self.group, self.topic = group, topic
        self._admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)

    async def start(self) -> None:
        """Connect."""
        await self._admin.start()

    async def stop(self) -> None:
        """Disconnect."""
        await self._admin.close()

    async def offsets(self) -> dict[int, int]:
        """The committed offset per partition of the bench topic."""
        found = await self._admin.list_consumer_group_offsets(self.group)
        return {tp.partition: meta.offset for tp, meta in found.items() if tp.topic == self.topic}


async def drained(
    committed: Committed, engine: Any, tag: str, sent: list[Any]
) -> tuple[int, float]:
    """Wait until every sent record (`RecordMetadata`) is committed by the service, or
    SB_BENCH_DRAIN_S passed: how many were, and when (`perf_counter`) that was seen. The
    database confirms the count once afterwards."""
    deadline = time.perf_counter() + DRAIN_S
    while True:
        offsets = await committed.offsets()
        seen_at = time.perf_counter()
        done = sum(1 for m in sent if m.offset < offsets.get(m.partition, -1))
        if done == len(sent) or seen_at > deadline:
            break
        await asyncio.sleep(0.02)
    if done < len(sent):
        print(f"  only {done:,} of {len(sent):,} applied after waiting {DRAIN_S:.0f} s")
    in_db = await applied(engine, tag)
    if in_db != done:
        print(f"  committed offsets say {done:,} applied, the database has {in_db:,}")
    return done, seen_at


async def latency_phase(
    producer: AIOKafkaProducer,
    topic: str,
    engine: Any,
    committed: Committed,
    service_pids: list[int],
) -> None:
    """Paced publishing; latency of each new case from its message to its ticket.assigned."""
    assigned = Assigned()
    await assigned.start()
    sent: dict[str, int] = {}
    total = RATE * SECONDS
    tag = f"lat{len(service_pids)}"
    records = [message(n, topic, tag) for n in range(total)]  # built before the clock runs
    events = [decode(value) for _, value in records]
    usage = Usage(service_pids)
    start = time.perf_counter()
    futures = []
    for n, (key, value) in enumerate(records):
        delay = start + n / RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        futures.append(await producer.send(topic, value, key=key))
    metas = []
    for sent_event, fut in zip(events, futures, strict=True):
        meta = await fut
        metas.append(meta)
        if not sent_event.data.customer_id.startswith("fc-"):
            sent[sent_event.id] = meta.timestamp
    done, _ = await drained(committed, engine, tag, metas)
    cpu = usage.per_message(done)
    await asyncio.sleep(1.0)  # the relay publishes the last assignments
    await assigned.stop()
    lat: list[float] = [assigned.seen[i] - t for i, t in sent.items() if i in assigned.seen]
    lat = lat or [0.0]
    print(
        f"latency at {RATE}/s for {SECONDS} s: {len(lat):,} of {len(sent):,} new cases assigned;"
        f" message → ticket.assigned p50 {pct(lat, 50):.0f} ms, p99 {pct(lat, 99):.0f} ms,"
        f" max {max(lat):.0f} ms (goal p99 ≤ 20 ms); CPU per message: {cpu_text(cpu)}"
        f" (load average {os.getloadavg()[0]:.1f})"
    )


class Statements:
    """Counts the SQL statements this process sends (the service's and the bench's polling),
    through SQLAlchemy and on the driver connection (`routing.adapters.driver`)."""

    def __init__(self, engine: Any) -> None:
        self._through_engine = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self._through_engine += 1

    @property
    def count(self) -> int:
        """Statements sent so far."""
        return self._through_engine + driver.SENT["statements"]


async def handler_phase(service: RoutingService) -> None:
    """The consumer's batch handler called in-process (no Kafka, no relay), in batches of each
    size in SB_BENCH_HANDLER_BATCHES (100 as a burst's polls give them, 10 as at 500/s): CPU and
    SQL statements per message of the decision path alone, the figure the machine's load moves
    least; the difference between sizes is the cost per batch. Its outbox rows are dropped
    afterwards."""
    engine = service.runtime.engine
    handle = batch_handler(
        service.runtime.uow,
        consumer="messages",
        handle=handlers(service.knobs)["messages"],
        handle_batch=batch_handlers(service.knobs)["messages"],
    )
    statements = Statements(engine)
    for size in HANDLER_BATCHES:
        cpu, sql = [], []
        for rep in range(1 + REPS):  # the first run warms caches up and is not counted
            tag = f"hp{size}-{rep}"
            records = [
                Record("in-process", 0, n, k.decode(), v)
                for n, (k, v) in enumerate(message(n, "in-process", tag) for n in range(HANDLER))
            ]
            sent0, cpu0 = statements.count, time.process_time()
            for first in range(0, HANDLER, size):
                await handle(records[first : first + size])
            if rep:
                cpu.append((time.process_time() - cpu0) * 1000 / HANDLER)
                sql.append((statements.count - sent0) / HANDLER)
        print(
            f"in-process batch handler, {HANDLER:,} messages x {REPS} in batches of {size}: per"
            f" message {statistics.median(cpu):.2f} ms CPU (median; {min(cpu):.2f}-{max(cpu):.2f}),"
            f" {statistics.median(sql):.1f} SQL statements (PostgreSQL's CPU not counted)"
        )
    async with engine.begin() as conn:
        await conn.execute(delete(orm.kit.outbox))


async def throughput_phase(
    producer: AIOKafkaProducer,
    topic: str,
    engine: Any,
    committed: Committed,
    service_pids: list[int],
) -> None:
    """Bursts published at once; messages/s until all are applied; median of REPS. Also the CPU
    per message of the service, PostgreSQL and the broker, which the machine's load moves less
    (and, in the in-process harness, the SQL statements per message)."""
    rates: list[float] = []
    cpu: list[dict[str, float]] = []
    sql: list[float] = []
    statements = Statements(engine)
    for rep in range(REPS):
        tag = f"tp{len(service_pids)}-{rep}"
        records = [message(n, topic, tag) for n in range(BURST)]
        sent0, usage = statements.count, Usage(service_pids)
        start = time.perf_counter()
        futures = [await producer.send(topic, v, key=k) for k, v in records]
        metas = await asyncio.gather(*futures)
        published = time.perf_counter() - start
        done, finished = await drained(committed, engine, tag, metas)
        took = finished - start
        rates.append(done / took)
        cpu.append(usage.per_message(done))
        sql.append((statements.count - sent0) / max(done, 1))
        counted = f"{sql[-1]:.1f} SQL statements, " if IN_PROCESS else ""
        print(
            f"  rep {rep + 1}: {done:,} messages applied in {took:.1f} s"
            f" ({published:.1f} s publishing): {done / took:,.0f} messages/s;"
            f" {counted}CPU per message: {cpu_text(cpu[-1])}"
        )
    median_cpu = {k: statistics.median(c[k] for c in cpu) for k in cpu[0]}
    counted = f"{statistics.median(sql):.1f} SQL statements, " if IN_PROCESS else ""
    print(
        f"throughput: median {statistics.median(rates):,.0f} messages/s over {REPS} bursts"
        f" (goal ≥ 2,000/s); per message {counted}CPU {cpu_text(median_cpu)} (medians;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


@contextlib.contextmanager
def service_process(
    settings: RoutingSettings, topic: str, port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """The routing service as its own process on the bench's schema and topic, until ready."""
    env = {
        **os.environ,
        "SB_SERVICE": settings.service,
        "SB_BUS": "kafka",
        "SB_KAFKA_BOOTSTRAP": KAFKA,
        "SB_DATABASE_URL": PG,
        "SB_DB_SCHEMA": str(settings.db_schema),
        "SB_AUTH_KEY_DIR": settings.auth_key_dir,
        "SB_LOG_LEVEL": "WARNING",
        "SB_OUTBOX_POLL_MS": str(settings.outbox_poll_ms),
        "SB_MIGRATE_ON_START": "false",
        "SB_HOST": "127.0.0.1",
        "SB_PORT": str(port),
        "SB_BENCH_TOPIC": topic,
    }
    proc = subprocess.Popen([sys.executable, "-m", "bench.routing_server"], env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"routing service exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("routing service not ready after 120 s")
            time.sleep(0.25)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=60)


async def kafka_phases(
    service: RoutingService, bus: KafkaBus, settings: RoutingSettings, topic: str
) -> None:
    """Warm-up, latency and throughput with the service as its own process(es), once per
    replica count in SB_BENCH_REPLICAS (or in this process)."""
    engine = service.runtime.engine
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=1)
    committed = Committed(f"{settings.service}.messages", topic)
    await producer.start()
    await committed.start()
    try:
        if IN_PROCESS:
            await bus.start()
            await service.runtime.start()
            try:
                while not bus.consumers_ready():  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                print(f"routing service in this process; load average {os.getloadavg()[0]:.1f}")
                await kafka_runs(producer, topic, engine, committed, [])
            finally:
                await service.runtime.stop()
                await bus.stop()
            return
        await bus.ensure_topics([TopicSpec(topic, MESSAGES_ATTRIBUTED.partitions, 3_600_000)])
        for replicas in REPLICAS:
            with contextlib.ExitStack() as stack:
                procs = [
                    stack.enter_context(service_process(settings, topic, SERVICE_PORT + i))
                    for i in range(replicas)
                ]
                pids = [p.pid for p in procs]
                print(
                    f"routing service as {replicas} process(es) of one consumer group (pids"
                    f" {', '.join(map(str, pids))}); load average {os.getloadavg()[0]:.1f}"
                )
                await kafka_runs(producer, topic, engine, committed, pids)
    finally:
        await committed.stop()
        await producer.stop()


async def kafka_runs(
    producer: AIOKafkaProducer, topic: str, engine: Any, committed: Committed, pids: list[int]
) -> None:
    """Warm-up, then the latency and throughput phases."""
    # as many messages as the latency phase sends (other draws of the same mix), so that the
    # service's per-process caches (statements compiled once per demand shape, ~110 in this
    # fixture) are warm, as in a process that has run a while: after 500 (~70 shapes) the
    # latency phase compiled the rest, ~4 statements of a few ms each per shape
    count = max(500, RATE * SECONDS)
    warm = [message(n, topic, f"warm{len(pids)}") for n in range(10**6, 10**6 + count)]
    metas = await asyncio.gather(*[await producer.send(topic, v, key=k) for k, v in warm])
    await drained(committed, engine, f"warm{len(pids)}", metas)
    await latency_phase(producer, topic, engine, committed, pids)
    await throughput_phase(producer, topic, engine, committed, pids)


async def main() -> None:
    """Load, the handler in-process, warm up, latency at a fixed rate, sustained throughput."""
    suffix = uuid.uuid4().hex[:8]
    schema, topic = f"bench_{suffix}", f"bench.attributed.{suffix}"
    tmp = Path(tempfile.mkdtemp())
    settings = RoutingSettings(
        service=f"routing-bench-{suffix}",
        bus="kafka",
        kafka_bootstrap=KAFKA,
        database_url=PG,
        db_schema=schema,
        auth_key_dir=str(tmp / "keys"),
        log_level="WARNING",
        outbox_poll_ms=50,
    )
    partitions = MESSAGES_ATTRIBUTED.partitions
    specs = [TopicSpec(t.name, t.partitions, t.retention_ms) for t in ALL_TOPICS]
    bus = KafkaBus(KAFKA, topics=[*specs, TopicSpec(topic, partitions, 3_600_000)])
    service = bootstrap(settings, bus=bus, topic_names={MESSAGES_ATTRIBUTED.name: topic})
    runtime = service.runtime
    tune_collector()
    freeze_startup_objects()  # as `python -m routing` does before serving
    try:
        await runtime.migrate()
        start = time.perf_counter()
        await load_fixture(runtime.engine)
        print(
            f"loaded {AGENTS:,} agents, {QUEUES} queues, {OPEN:,} open cases (+ a message and"
            f" a timer each) in {time.perf_counter() - start:.1f} s"
        )
        await handler_phase(service)
        await kafka_phases(service, bus, settings, topic)
    finally:
        await runtime.engine.dispose()
        admin = make_engine(PG)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
