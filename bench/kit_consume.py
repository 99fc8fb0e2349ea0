"""Idempotent consume over real Kafka and PostgreSQL: one transaction per record vs per batch.

    SB_KAFKA_PORT=19092 SB_PG_PORT=15432 python -m bench.kit_consume

A `ServiceRuntime` consumer whose handler inserts one row per event (inbox, effect and
commit as in every service), fed SB_BENCH_N events (20,000) on 3 partitions that are all
published before it starts. Each repetition (SB_BENCH_REPS, 3) times `batch=False` and the
default batched consumer on fresh topics and schemas, alternating which goes first, and the
medians are printed with their ratio. Timed from start until every effect is committed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text

from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.control import TenantCreated
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord
from sbkit.db.engine import make_engine
from sbkit.db.tables import KitTables
from sbkit.db.uow import UnitOfWork
from sbkit.runtime import ServiceRuntime
from sbkit.settings import KitSettings

N = int(os.environ.get("SB_BENCH_N", "20000"))
REPS = int(os.environ.get("SB_BENCH_REPS", "3"))
KAFKA = f"127.0.0.1:{os.environ.get('SB_KAFKA_PORT', '19092')}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{os.environ.get('SB_PG_PORT', '15432')}/switchboard"


def tables() -> tuple[MetaData, KitTables, Table]:
    """The kit's inbox/outbox plus one effect table."""
    metadata = MetaData()
    kit = KitTables(metadata)
    effects = Table(
        "effects",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(100), nullable=False),
    )
    return metadata, kit, effects


async def run_once(*, batch: bool) -> float:
    """Events per second for one fresh topic and schema."""
    topic, schema = f"bench.kit.{uuid.uuid4().hex[:8]}", f"bench_{uuid.uuid4().hex[:8]}"
    metadata, kit, effects = tables()
    admin = make_engine(PG)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    settings = KitSettings(
        service="kitbench", database_url=PG, db_schema=schema, migrate_on_start=False
    )
    producer = KafkaBus(KAFKA, topics=[TopicSpec(topic, 3, 3_600_000)])
    await producer.start()
    await producer.publish(
        [
            OutgoingRecord(topic, f"t:{n % 97}", encode(event(n)))
            for n in range(N)  # 97 keys over 3 partitions
        ]
    )
    await producer.stop()
    bus = KafkaBus(KAFKA, topics=[TopicSpec(topic, 3, 3_600_000)])
    runtime = ServiceRuntime(settings, metadata=metadata, tables=kit, migrations=Path("."), bus=bus)
    async with runtime.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)

    async def apply(uow: UnitOfWork, e: CloudEvent[Any]) -> None:
        await uow.session.execute(insert(effects).values(name=e.data.name))

    runtime.consume("bench", [topic], apply, batch=batch)
    try:
        start = time.perf_counter()
        await runtime.start()
        await bus.start()
        while True:
            async with runtime.engine.connect() as conn:
                done = (await conn.execute(select(func.count()).select_from(effects))).scalar()
            if done == N:
                break
            await asyncio.sleep(0.05)
        rate = N / (time.perf_counter() - start)
        await bus.stop()
        await runtime.stop()
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
    return rate


def event(n: int) -> CloudEvent[Any]:
    """A small valid event."""
    return new_event(TenantCreated(tenant_id="t", name=f"e{n}"), tenant_id="t", source="bench")


async def main() -> None:
    """Alternate the two modes, print medians and the ratio."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for rep in range(REPS):
        for batch in (False, True) if rep % 2 == 0 else (True, False):
            rates[batch].append(await run_once(batch=batch))
    single, batched = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"idempotent consume, {N:,} events, 3 partitions, real Kafka + PostgreSQL:")
    for label, mode, median in (("record", False, single), ("batch", True, batched)):
        reps = " / ".join(f"{r:,.0f}" for r in rates[mode])
        print(f"  one transaction per {label:6}: {median:,.0f} events/s (reps {reps})")
    print(f"  batched / per record: {batched / single:.1f}x (medians of {REPS})")


if __name__ == "__main__":
    asyncio.run(main())
