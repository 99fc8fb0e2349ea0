"""crm benchmark over real Kafka and PostgreSQL: attribution throughput, card and timeline latency.

    SB_KAFKA_PORT=19092 SB_PG_PORT=15432 python -m bench.crm_attribution

Seeds SB_BENCH_CUSTOMERS customers (each with an email handle) and SB_BENCH_TIMELINE timeline
entries into a fresh schema, publishes SB_BENCH_MESSAGES messages (80% from known handles, 20%
new) to a topic of its own, and times the crm consumer until all are attributed (committed with
their timeline entry and outbox row). Then reads SB_BENCH_READS cards and timeline pages through
the HTTP app (auth included) and prints p50/p99. Defaults are far below the issue's 1M customers /
10M entries so a run takes about a minute; raise them with the env knobs.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, text

from crm.adapters import orm
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

CUSTOMERS = int(os.environ.get("SB_BENCH_CUSTOMERS", "20000"))
TIMELINE = int(os.environ.get("SB_BENCH_TIMELINE", "200000"))
MESSAGES_N = int(os.environ.get("SB_BENCH_MESSAGES", "5000"))
READS = int(os.environ.get("SB_BENCH_READS", "500"))
KAFKA = f"127.0.0.1:{os.environ.get('SB_KAFKA_PORT', '19092')}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{os.environ.get('SB_PG_PORT', '15432')}/switchboard"
TENANT = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def seed(service: object, ids: list[str]) -> None:
    """Customers with one email each, and timeline entries spread over them, in bulk."""
    runtime = service.runtime  # type: ignore[attr-defined]
    async with runtime.engine.begin() as conn:
        for lo in range(0, len(ids), 5000):
            chunk = ids[lo : lo + 5000]
            await conn.execute(
                insert(orm.customers),
                [
                    dict(id=c, tenant_id=TENANT, status="active", created_at=T0, updated_at=T0)
                    for c in chunk
                ],
            )
            await conn.execute(
                insert(orm.identities),
                [
                    dict(
                        tenant_id=TENANT,
                        customer_id=c,
                        kind="email",
                        scope="",
                        value=f"{c}@x.test",
                        source="message",
                        source_ref="seed",
                        created_at=T0,
                    )
                    for c in chunk
                ],
            )
        for lo in range(0, TIMELINE, 10000):
            rows = [
                dict(
                    tenant_id=TENANT,
                    customer_id=ids[n % len(ids)],
                    kind="message",
                    ref=f"s{n}",
                    source_event_id=f"seed-{n}",
                    occurred_at=T0 + timedelta(seconds=n),
                    channel="email",
                    summary="seeded entry",
                )
                for n in range(lo, min(lo + 10000, TIMELINE))
            ]
            await conn.execute(insert(orm.timeline), rows)
        await conn.execute(text("ANALYZE"))


def messages(ids: list[str], topic: str) -> list[OutgoingRecord]:
    """MESSAGES_N message records: 80% from seeded handles, 20% from new ones."""
    out = []
    for n in range(MESSAGES_N):
        sender = f"{random.choice(ids)}@x.test" if random.random() < 0.8 else f"new{n}@x.test"
        data = MessageReceived(
            message_id=f"b{n}",
            channel=Channel.EMAIL,
            provider="bench",
            provider_message_id=f"b{n}",
            received_at=datetime.now(UTC),
            sender=Handle(kind=HandleKind.EMAIL, value=sender),
            text="where is my parcel?",
            body="where is my parcel?",
        )
        event = new_event(data, tenant_id=TENANT, source="bench")
        out.append(OutgoingRecord(topic, partition_key(TENANT, sender), encode(event)))
    return out


async def timeline_rows(runtime: object) -> int:
    """Timeline entries in the bench schema."""
    async with runtime.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(
            (await conn.execute(select(func.count()).select_from(orm.timeline))).scalar_one()
        )


def pct(samples: list[float], q: float) -> float:
    """A percentile in milliseconds."""
    return statistics.quantiles(samples, n=100)[int(q) - 1] * 1000


async def reads(client: httpx.AsyncClient, headers: dict[str, str], ids: list[str]) -> None:
    """Card and timeline read latency through the HTTP app."""
    for name, path in (
        ("card", "/v1/customers/{}"),
        ("timeline", "/v1/customers/{}/timeline?limit=20"),
    ):
        samples = []
        for _ in range(READS):
            start = time.perf_counter()
            r = await client.get(path.format(random.choice(ids)), headers=headers)
            samples.append(time.perf_counter() - start)
            assert r.status_code == 200, r.text
        print(
            f"{name} read: p50 {pct(samples, 50):.1f} ms, p99 {pct(samples, 99):.1f} ms ({READS} reads)"
        )


async def main() -> None:
    """Seed, attribute, read, report."""
    schema, topic = f"bench_{uuid.uuid4().hex[:8]}", f"bench.messages.{uuid.uuid4().hex[:8]}"
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
    ids = [str(uuid.uuid4()) for _ in range(CUSTOMERS)]
    try:
        await service.runtime.migrate()
        start = time.perf_counter()
        await seed(service, ids)
        print(
            f"seeded {CUSTOMERS:,} customers and {TIMELINE:,} timeline entries"
            f" in {time.perf_counter() - start:.0f} s"
            " (the issue asks for 1M / 10M: raise SB_BENCH_CUSTOMERS / SB_BENCH_TIMELINE)"
        )
        await bus.start()  # producer only until the app starts its consumers
        await bus.publish(messages(ids, topic))
        await bus.stop()
        async with app.router.lifespan_context(app):
            start = time.perf_counter()
            while (first := await timeline_rows(service.runtime)) == TIMELINE:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            joined = time.perf_counter()
            while await timeline_rows(service.runtime) < TIMELINE + MESSAGES_N:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            end = time.perf_counter()
            steady = (TIMELINE + MESSAGES_N - first) / (end - joined)
            print(
                f"attributed {MESSAGES_N:,} messages in {end - start:.1f} s"
                f" ({joined - start:.1f} s of it joining the group):"
                f" {steady:,.0f} messages/s after the first"
                " (one transaction per message: the kit has no batch consume yet; goal 3,000/s)"
            )
            _, token = mint(ring, tenant_id=TENANT, scopes=["customers:read"], ttl_s=600)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://crm"
            ) as client:
                await reads(client, {"authorization": f"Bearer {token}"}, ids)
    finally:
        admin = make_engine(PG)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
