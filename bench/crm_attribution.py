"""crm benchmark over real Kafka and PostgreSQL: attribution throughput, card and timeline latency.

    SB_KAFKA_PORT=19092 SB_PG_PORT=15432 python -m bench.crm_attribution

Bulk-loads SB_BENCH_CUSTOMERS customers (1,000,000; each with an email handle and a name; every
4th with an order and its parcel, every 4th a ticket) and SB_BENCH_TIMELINE timeline entries
(10,000,000) into a fresh schema with `generate_series` (secondary indexes dropped during the
load and built afterwards, as a restore would), and prints how long that took; with
SB_BENCH_SCHEMA the schema is kept and only its empty tables are loaded next time. Then
publishes SB_BENCH_MESSAGES messages (20,000: 80% from known handles, 20% from handles new in
this run) to a topic of its own and times the crm consumer (batched per poll, real Kafka and
PostgreSQL) until all are attributed: committed with their timeline entry and outbox rows.
Last, SB_BENCH_READS (1,000) card and timeline reads of random customers through the HTTP app
(auth included) and their p50/p99. CPU per message and per read is printed for this process,
PostgreSQL and Kafka (from /proc, their pid files under SB_DATA_DIR). Figures are printed,
never asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.procstat import servers_cpu
from crm.bootstrap import bootstrap
from crm.config import CrmSettings
from sbcontracts.catalog import encode
from sbcontracts.envelope import new_event
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.topics import ALL_TOPICS, MESSAGES, partition_key
from sbkit.auth import Keyring, TokenVerifier, mint
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord
from sbkit.db.engine import make_engine
from sbkit.serve import freeze_startup_objects, tune_collector
from sbkit.web import standalone_app

CUSTOMERS = int(os.environ.get("SB_BENCH_CUSTOMERS", "1000000"))
TIMELINE = int(os.environ.get("SB_BENCH_TIMELINE", "10000000"))
MESSAGES_N = int(os.environ.get("SB_BENCH_MESSAGES", "20000"))
READS = int(os.environ.get("SB_BENCH_READS", "1000"))
KEEP = os.environ.get("SB_BENCH_SCHEMA")  # load once into this schema, keep and reuse it
KAFKA_PORT = os.environ.get("SB_KAFKA_PORT", "19092")
PG_PORT = os.environ.get("SB_PG_PORT", "15432")
KAFKA = f"127.0.0.1:{KAFKA_PORT}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/switchboard"
DATA_DIR = Path(os.environ.get("SB_DATA_DIR", Path(__file__).parents[1] / ".data"))
TENANT = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# Customer n (1-based) has id md5('c' || n) as a UUID and the handle c<n>@x.test; every 4th
# customer (n = 4k) has an order with one parcel, every 4th (n = 4k - 2) a ticket.
SEED_SQL = {
    "customers": """INSERT INTO customers (id, tenant_id, status, created_at, updated_at)
    SELECT md5('c' || g)::uuid::text, :tenant, 'active', :t0, :t0
    FROM generate_series(1, :customers) g""",
    "identities": """INSERT INTO identities (tenant_id, customer_id, kind, scope, value, source,
                                            source_ref, created_at)
    SELECT :tenant, md5('c' || g)::uuid::text, 'email', '', 'c' || g || '@x.test', 'message',
           'seed', :t0
    FROM generate_series(1, :customers) g""",
    "attributes": """INSERT INTO attributes (tenant_id, customer_id, field, value, source,
                                            source_ref, recorded_at)
    SELECT :tenant, md5('c' || g)::uuid::text, 'name', 'Customer ' || g, 'order', 'seed', :t0
    FROM generate_series(1, :customers) g""",
    # entries spread evenly over the customers, one second apart in time
    "timeline": """INSERT INTO timeline (tenant_id, customer_id, kind, ref, source_event_id,
                                        occurred_at, channel, summary)
    SELECT :tenant, md5('c' || (g % :customers + 1))::uuid::text,
           CASE WHEN g % 4 = 0 THEN 'order' ELSE 'message' END, 's' || g, 'seed-' || g,
           CAST(:t0 AS timestamptz) + g * interval '1 second', 'email', 'seeded entry ' || g
    FROM generate_series(1, :timeline) g""",
    "orders": """INSERT INTO orders (tenant_id, customer_id, order_id, status, placed_at,
                                    currency, total_minor, shipment_ids, updated_at)
    SELECT :tenant, md5('c' || (4 * g))::uuid::text, 'o' || g, 'placed',
           CAST(:t0 AS timestamptz) + g * interval '1 minute', 'PLN', 1000 + g,
           CAST('["p' || g || '"]' AS json), :t0
    FROM generate_series(1, :quarter) g""",
    "shipments": """INSERT INTO shipments (tenant_id, shipment_id, order_id, carrier, status,
                                          occurred_at)
    SELECT :tenant, 'p' || g, 'o' || g, 'dpd',
           CASE g % 3 WHEN 0 THEN 'delivered' WHEN 1 THEN 'in_transit' ELSE 'out_for_delivery' END,
           CAST(:t0 AS timestamptz) + g * interval '1 minute' + interval '1 day'
    FROM generate_series(1, :quarter) g""",
    "tickets": """INSERT INTO tickets (tenant_id, ticket_id, customer_id, status, category,
                                      subject, channel, order_id, opened_at, updated_at)
    SELECT :tenant, 't' || g, md5('c' || (4 * g - 2))::uuid::text,
           CASE WHEN g % 2 = 0 THEN 'open' ELSE 'resolved' END, 'delivery_delay',
           'Where is my parcel?', 'email', NULL,
           CAST(:t0 AS timestamptz) + g * interval '1 minute',
           CAST(:t0 AS timestamptz) + g * interval '1 minute'
    FROM generate_series(1, :quarter) g""",
}
BIG_TABLES = tuple(SEED_SQL)


def customer_id(n: int) -> str:
    """The id the seed gave customer n."""
    return str(uuid.UUID(hashlib.md5(f"c{n}".encode()).hexdigest()))


async def _secondary_indexes(
    conn: AsyncConnection, tables: list[str]
) -> list[tuple[str, str, str, str | None]]:
    """(table, index, definition, constraint) of every non-primary-key index of these tables."""
    rows = await conn.execute(
        text(
            """SELECT t.relname, i.relname, pg_get_indexdef(i.oid), c.conname
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
            LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.contype = 'u'
            WHERE NOT x.indisprimary AND t.relname = ANY(:tables)"""
        ),
        {"tables": tables},
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def empty_tables(engine: AsyncEngine) -> list[str]:
    """The big tables without rows (all of them in a fresh schema)."""
    return [
        t
        for t in BIG_TABLES
        if not await scalar(engine, f'SELECT count(*) FROM (SELECT 1 FROM "{t}" LIMIT 1) x')
    ]


async def seed(engine: AsyncEngine, tables: list[str]) -> None:
    """Bulk-load these tables: drop their secondary indexes, generate rows, rebuild, analyse."""
    params = {
        "tenant": TENANT,
        "t0": T0,
        "customers": CUSTOMERS,
        "timeline": TIMELINE,
        "quarter": CUSTOMERS // 4,
    }
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        await conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        indexes = await _secondary_indexes(conn, tables)
        for table, index, _, constraint in indexes:
            if constraint:
                await conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}"'))
            else:
                await conn.execute(text(f'DROP INDEX "{index}"'))
        for table in tables:
            await conn.execute(text(SEED_SQL[table]), params)
        for table, index, definition, constraint in indexes:
            await conn.execute(text(definition))
            if constraint:
                await conn.execute(
                    text(
                        f'ALTER TABLE "{table}" ADD CONSTRAINT "{constraint}" UNIQUE USING INDEX "{index}"'
                    )
                )
    async with engine.connect() as conn:  # VACUUM cannot run in a transaction
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))


def messages(topic: str, run: str) -> list[OutgoingRecord]:
    """MESSAGES_N message records: 80% from seeded handles, 20% from handles new in this run
    (so a run on a kept schema creates as many customers as the first one)."""
    out = []
    for n in range(MESSAGES_N):
        known = random.random() < 0.8
        sender = f"c{random.randint(1, CUSTOMERS)}@x.test" if known else f"new{n}-{run}@x.test"
        data = MessageReceived(
            message_id=f"b{n}",
            channel=Channel.EMAIL,
            provider="bench",
            provider_message_id=f"b{n}",
            received_at=datetime.now(UTC),
            sender=Handle(kind=HandleKind.EMAIL, value=sender),
            display_name=f"Customer {n}" if n % 10 == 0 else None,
            text="where is my parcel?",
            body="where is my parcel?",
        )
        event = new_event(data, tenant_id=TENANT, source="bench")
        out.append(OutgoingRecord(topic, partition_key(TENANT, sender), encode(event)))
    return out


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> int:
    """One integer from the bench schema."""
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar_one())


def pct(samples: list[float], q: int) -> float:
    """A percentile in milliseconds."""
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


def server_cpu() -> tuple[float, float]:
    """CPU seconds so far of this bench's PostgreSQL and Kafka broker (NaN when not there)."""
    found = servers_cpu(DATA_DIR, KAFKA_PORT, PG_PORT)
    return found.get("PostgreSQL", math.nan), found.get("Kafka", math.nan)


class Cpu:
    """CPU used by this process, PostgreSQL and Kafka between `Cpu()` and `per(n)`."""

    def __init__(self) -> None:
        self.mine, (self.pg, self.kafka) = time.process_time(), server_cpu()

    def per(self, n: int) -> str:
        """CPU per unit of work in ms, by process."""
        if n <= 0:
            return "n/a (nothing measured)"
        pg, kafka = server_cpu()
        spent = (time.process_time() - self.mine, pg - self.pg, kafka - self.kafka)
        crm, pg_ms, kafka_ms = (x / n * 1000 for x in spent)
        return f"crm {crm:.2f} ms, PostgreSQL {pg_ms:.2f} ms, Kafka {kafka_ms:.2f} ms"


async def reads(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Card and timeline read latency through the HTTP app, random seeded customers."""
    for name, path in (
        ("card", "/v1/customers/{}"),
        ("timeline", "/v1/customers/{}/timeline?limit=20"),
    ):
        samples = []
        cpu = Cpu()
        for _ in range(READS):
            cid = customer_id(random.randint(1, CUSTOMERS))
            start = time.perf_counter()
            r = await client.get(path.format(cid), headers=headers)
            samples.append(time.perf_counter() - start)
            assert r.status_code == 200, r.text
        print(
            f"{name} read: p50 {pct(samples, 50):.1f} ms, p99 {pct(samples, 99):.1f} ms"
            f" ({READS:,} reads of random customers"
            + ("; goal p99 <= 20 ms" if name == "card" else "")
            + f"); CPU per read: {cpu.per(READS)} (crm includes the in-process HTTP client);"
            f" load average {os.getloadavg()[0]:.1f}"
        )


async def attribute(runtime: Any, seeded_max_id: int) -> None:
    """Wait until every message has its timeline entry; print the rate and CPU per message."""
    engine = runtime.engine
    new = "SELECT count(*) FROM timeline WHERE id > :seeded"
    start = time.perf_counter()
    while (first := await scalar(engine, new, seeded=seeded_max_id)) == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    joined, cpu = time.perf_counter(), Cpu()
    while await scalar(engine, new, seeded=seeded_max_id) < MESSAGES_N:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    end = time.perf_counter()
    print(
        f"attributed {MESSAGES_N:,} messages in {end - start:.1f} s"
        f" ({joined - start:.1f} s of it joining the group):"
        f" {(MESSAGES_N - first) / (end - joined):,.0f} messages/s after the first"
        f" (batched per poll; goal 3,000/s); CPU per message: {cpu.per(MESSAGES_N - first)}"
        f" (crm = consumer + outbox relay); load average {os.getloadavg()[0]:.1f}"
    )


async def main() -> None:
    """Seed, attribute, read, report."""
    schema, topic = (
        KEEP or f"bench_{uuid.uuid4().hex[:8]}",
        f"bench.messages.{uuid.uuid4().hex[:8]}",
    )
    tmp = Path(tempfile.mkdtemp())
    settings = CrmSettings(
        service=f"crm-bench-{uuid.uuid4().hex[:6]}",
        bus="kafka",
        kafka_bootstrap=KAFKA,
        database_url=PG,
        db_schema=schema,
        auth_key_dir=str(tmp / "keys"),
        log_level="WARNING",
        # the reads measure the card, not a per-tenant request limit (ignored by kits without one)
        api_rate_per_s=1_000_000,
        api_rate_burst=1_000_000,
    )
    specs = [TopicSpec(t.name, t.partitions, t.retention_ms) for t in ALL_TOPICS] + [
        TopicSpec(topic, 6, 3_600_000)
    ]
    bus = KafkaBus(KAFKA, topics=specs)
    service = bootstrap(settings, bus=bus, topic_names={MESSAGES.name: topic})
    ring = Keyring.load(tmp / "keys")
    app = standalone_app(service.runtime, service.routers, TokenVerifier(ring))
    try:
        await service.runtime.migrate()
        start = time.perf_counter()
        engine = service.runtime.engine
        empty = await empty_tables(engine)
        if empty:
            await seed(engine, empty)
            print(
                f"bulk-loaded {', '.join(empty)} in {time.perf_counter() - start:.0f} s"
                " (generate_series, indexes built after, VACUUM ANALYZE)"
            )
        if len(empty) < len(BIG_TABLES):
            print(f"reusing the other tables of schema {KEEP} (SB_BENCH_SCHEMA)")
        print(
            f"data: {CUSTOMERS:,} customers with a handle and a name, {TIMELINE:,} timeline"
            " entries; an order with a parcel for every 4th customer, a ticket for every 4th"
        )
        seeded_max = await scalar(service.runtime.engine, "SELECT max(id) FROM timeline")
        await bus.start()  # producer only until the app starts its consumers
        await bus.publish(messages(topic, topic.rsplit(".", 1)[1]))
        await bus.stop()
        tune_collector()
        freeze_startup_objects()  # as `python -m crm` does before serving
        async with app.router.lifespan_context(app):
            await attribute(service.runtime, seeded_max)
            while await scalar(engine, "SELECT count(*) FROM outbox"):  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # the relay's publishing would count in the reads' CPU
            _, token = mint(ring, tenant_id=TENANT, scopes=["customers:read"], ttl_s=600)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://crm"
            ) as client:
                await reads(client, {"authorization": f"Bearer {token}"})
    finally:
        if not KEEP:
            admin = make_engine(PG)
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
