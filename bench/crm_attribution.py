"""crm benchmark over real Kafka and PostgreSQL: attribution throughput, card and timeline latency.

    SB_KAFKA_PORT=19092 SB_PG_PORT=15432 python -m bench.crm_attribution

Bulk-loads SB_BENCH_CUSTOMERS customers (1,000,000; each with an email handle and a name) and
SB_BENCH_TIMELINE timeline entries (10,000,000) into a fresh schema with `generate_series`
(secondary indexes dropped during the load and built afterwards, as a restore would), and
prints how long that took. Then publishes SB_BENCH_MESSAGES messages (20,000: 80% from known
handles, 20% new) to a topic of its own and times the crm consumer (batched per poll, real
Kafka and PostgreSQL) until all are attributed: committed with their timeline entry and
outbox rows. Last, SB_BENCH_READS (1,000) card and timeline reads of random customers through
the HTTP app (auth included) and their p50/p99. Figures are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from sbkit.web import standalone_app

CUSTOMERS = int(os.environ.get("SB_BENCH_CUSTOMERS", "1000000"))
TIMELINE = int(os.environ.get("SB_BENCH_TIMELINE", "10000000"))
MESSAGES_N = int(os.environ.get("SB_BENCH_MESSAGES", "20000"))
READS = int(os.environ.get("SB_BENCH_READS", "1000"))
KEEP = os.environ.get("SB_BENCH_SCHEMA")  # load once into this schema, keep and reuse it
KAFKA = f"127.0.0.1:{os.environ.get('SB_KAFKA_PORT', '19092')}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{os.environ.get('SB_PG_PORT', '15432')}/switchboard"
TENANT = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BIG_TABLES = ("customers", "identities", "attributes", "timeline")

# Customer n (1-based) has id md5('c' || n) as a UUID and the handle c<n>@x.test.
SEED_SQL = (
    """INSERT INTO customers (id, tenant_id, status, created_at, updated_at)
    SELECT md5('c' || g)::uuid::text, :tenant, 'active', :t0, :t0
    FROM generate_series(1, :customers) g""",
    """INSERT INTO identities (tenant_id, customer_id, kind, scope, value, source, source_ref,
                               created_at)
    SELECT :tenant, md5('c' || g)::uuid::text, 'email', '', 'c' || g || '@x.test', 'message',
           'seed', :t0
    FROM generate_series(1, :customers) g""",
    """INSERT INTO attributes (tenant_id, customer_id, field, value, source, source_ref,
                               recorded_at)
    SELECT :tenant, md5('c' || g)::uuid::text, 'name', 'Customer ' || g, 'order', 'seed', :t0
    FROM generate_series(1, :customers) g""",
    # entries spread evenly over the customers, one second apart in time
    """INSERT INTO timeline (tenant_id, customer_id, kind, ref, source_event_id, occurred_at,
                             channel, summary)
    SELECT :tenant, md5('c' || (g % :customers + 1))::uuid::text,
           CASE WHEN g % 4 = 0 THEN 'order' ELSE 'message' END, 's' || g, 'seed-' || g,
           CAST(:t0 AS timestamptz) + g * interval '1 second', 'email', 'seeded entry ' || g
    FROM generate_series(1, :timeline) g""",
)


def customer_id(n: int) -> str:
    """The id the seed gave customer n."""
    return str(uuid.UUID(hashlib.md5(f"c{n}".encode()).hexdigest()))


async def _secondary_indexes(conn: AsyncConnection) -> list[tuple[str, str, str, str | None]]:
    """(table, index, definition, constraint) of every non-primary-key index of the big tables."""
    rows = await conn.execute(
        text(
            """SELECT t.relname, i.relname, pg_get_indexdef(i.oid), c.conname
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
            LEFT JOIN pg_constraint c ON c.conindid = i.oid AND c.contype = 'u'
            WHERE NOT x.indisprimary AND t.relname = ANY(:tables)"""
        ),
        {"tables": list(BIG_TABLES)},
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def seed(engine: AsyncEngine) -> None:
    """Bulk-load the big tables: drop their secondary indexes, generate rows, rebuild, analyse."""
    params = {"tenant": TENANT, "t0": T0, "customers": CUSTOMERS, "timeline": TIMELINE}
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        await conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        indexes = await _secondary_indexes(conn)
        for table, index, _, constraint in indexes:
            if constraint:
                await conn.execute(text(f'ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}"'))
            else:
                await conn.execute(text(f'DROP INDEX "{index}"'))
        for sql in SEED_SQL:
            await conn.execute(text(sql), params)
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
        await conn.execute(text(f"VACUUM (ANALYZE) {', '.join(BIG_TABLES)}"))


def messages(topic: str) -> list[OutgoingRecord]:
    """MESSAGES_N message records: 80% from seeded handles, 20% from new ones."""
    out = []
    for n in range(MESSAGES_N):
        known = random.random() < 0.8
        sender = f"c{random.randint(1, CUSTOMERS)}@x.test" if known else f"new{n}@x.test"
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


async def reads(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Card and timeline read latency through the HTTP app, random seeded customers."""
    for name, path in (
        ("card", "/v1/customers/{}"),
        ("timeline", "/v1/customers/{}/timeline?limit=20"),
    ):
        samples = []
        for _ in range(READS):
            cid = customer_id(random.randint(1, CUSTOMERS))
            start = time.perf_counter()
            r = await client.get(path.format(cid), headers=headers)
            samples.append(time.perf_counter() - start)
            assert r.status_code == 200, r.text
        print(
            f"{name} read: p50 {pct(samples, 50):.1f} ms, p99 {pct(samples, 99):.1f} ms"
            f" ({READS:,} reads of random customers)"
            + ("; goal p99 <= 20 ms" if name == "card" else "")
        )


async def attribute(runtime: Any, seeded_max_id: int) -> None:
    """Wait until every message has its timeline entry; print the rate and CPU per message."""
    engine = runtime.engine
    new = "SELECT count(*) FROM timeline WHERE id > :seeded"
    start = time.perf_counter()
    while (first := await scalar(engine, new, seeded=seeded_max_id)) == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    joined, cpu = time.perf_counter(), time.process_time()
    while await scalar(engine, new, seeded=seeded_max_id) < MESSAGES_N:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    end = time.perf_counter()
    per_msg = (time.process_time() - cpu) / (MESSAGES_N - first) * 1000
    print(
        f"attributed {MESSAGES_N:,} messages in {end - start:.1f} s"
        f" ({joined - start:.1f} s of it joining the group):"
        f" {(MESSAGES_N - first) / (end - joined):,.0f} messages/s after the first"
        f" (batched per poll; goal 3,000/s); crm process CPU {per_msg:.2f} ms per message"
        f" (consumer + outbox relay); load average {os.getloadavg()[0]:.1f}"
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
        if KEEP and await scalar(engine, "SELECT count(*) FROM customers") >= CUSTOMERS:
            print(f"reusing the data loaded into schema {KEEP} (SB_BENCH_SCHEMA)")
        else:
            await seed(engine)
            print(
                f"bulk-loaded {CUSTOMERS:,} customers (handle + name each) and {TIMELINE:,}"
                f" timeline entries in {time.perf_counter() - start:.0f} s"
                " (generate_series, indexes built after, VACUUM ANALYZE)"
            )
        seeded_max = await scalar(service.runtime.engine, "SELECT max(id) FROM timeline")
        await bus.start()  # producer only until the app starts its consumers
        await bus.publish(messages(topic))
        await bus.stop()
        async with app.router.lifespan_context(app):
            await attribute(service.runtime, seeded_max)
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
