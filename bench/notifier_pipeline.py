"""notifier's processing rate through the real path: Kafka → notifier's commerce consumer → PostgreSQL.

    SB_KAFKA_PORT=29092 SB_PG_PORT=25432 SB_DATA_DIR=.data/bench \
        python -m bench.notifier_pipeline [orders] [seed]

Publishes the scenario's synthetic day (`bench.notifier_alerts.build`: orders, carrier scans with
duplicates and resent histories, in event-time order, keyed by order like ingest does) to a topic
of its own, then starts notifier (consumers only, a fixed clock inside the simulated week, no
timer worker) and times it until every record is applied: state machine, learned gaps, episodes,
notifications with their reasons and outbox rows, committed. With the kit's batch consumption (a
partition's polled records in one transaction, notifier's set-at-a-time batch path)
SB_BENCH_PIPELINE_REPS times (default 3, median printed) and, in the middle of the same run, one
transaction per record as the baseline on the first SB_BENCH_PIPELINE_BASELINE_ORDERS orders
(default 300; ~15x slower, and its rate per event does not depend on the count). Also counts SQL
statements per event (machine-independent) and the CPU per event of notifier (this process), of
PostgreSQL (postmaster and children) and of the Kafka broker (found by their pid files under
SB_DATA_DIR), and prints the load average. Run by `bench.notifier_alerts` when a bench broker
and database are configured (SB_KAFKA_PORT, SB_PG_PORT); SB_BENCH_PIPELINE_ORDERS sets the
orders (default 3,000: ~29k events).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select, text

from bench.notifier_alerts import DAY0, Order, build
from bench.procstat import bench_servers_cpu
from notifier.adapters import orm
from notifier.bootstrap import bootstrap
from notifier.config import NotifierSettings
from notifier.domain.shipments import Scan
from notifier.service_layer.ports import NoProviders
from sbcontracts.catalog import encode
from sbcontracts.envelope import EventData, new_event
from sbcontracts.events.ingest import (
    OrderPlaced,
    ShipmentEventReceived,
    ShipmentRef,
    ShipmentStatus,
)
from sbcontracts.topics import ALL_TOPICS, COMMERCE, partition_key
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord
from sbkit.db.engine import make_engine

KAFKA = f"127.0.0.1:{os.environ.get('SB_KAFKA_PORT', '19092')}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{os.environ.get('SB_PG_PORT', '15432')}/switchboard"
PARTITIONS = int(os.environ.get("SB_BENCH_PARTITIONS", "6"))
TENANT = "bench"
NOW = DAY0 + timedelta(days=3)  # inside the simulated week: no scan is stale


def _order_event(o: Order) -> OrderPlaced:
    ship = o.ship
    assert ship.dispatch_by is not None and ship.order_id is not None
    ref = ShipmentRef(
        shipment_id=ship.shipment_id, carrier=ship.carrier, tracking_number=f"T{ship.shipment_id}",
        dispatch_by=ship.dispatch_by,
    )  # fmt: skip
    return OrderPlaced(
        order_id=ship.order_id, customer_email=f"{o.customer.customer_id}@x.test",
        customer_phone="+48600100200", customer_language="pl",
        customer_timezone=o.customer.timezone, placed_at=ship.dispatch_by - timedelta(days=1),
        promised_to=ship.promised_to, shipments=(ref,),
    )  # fmt: skip


def _scan_event(o: Order, s: Scan) -> ShipmentEventReceived:
    ship = o.ship
    return ShipmentEventReceived(
        shipment_id=ship.shipment_id, order_id=ship.order_id, carrier=ship.carrier,
        tracking_number=f"T{ship.shipment_id}", status=ShipmentStatus(s.status),
        occurred_at=s.occurred_at, carrier_code=s.carrier_code, is_delay=s.is_delay,
        estimate_to=s.estimate_to,
    )  # fmt: skip


def records(n: int, seed: int, topic: str) -> list[OutgoingRecord]:
    """The scenario's orders and scans as commerce records in event-time order."""
    rnd = random.Random(seed)
    timed: list[tuple[Any, int, EventData, str]] = []
    for i in range(n):
        o, scans = build(i, rnd)
        assert o.ship.dispatch_by is not None and o.ship.order_id is not None
        placed = o.ship.dispatch_by - timedelta(days=1)
        timed.append((placed, len(timed), _order_event(o), o.ship.order_id))
        timed += [(at, len(timed) + k, _scan_event(o, s), o.ship.order_id)
                  for k, (at, s) in enumerate(scans)]  # fmt: skip
    timed.sort(key=lambda t: (t[0], t[1]))
    out = [
        OutgoingRecord(
            topic,
            partition_key(TENANT, order_id),
            encode(new_event(data, tenant_id=TENANT, source="bench")),
        )
        for _, _, data, order_id in timed
    ]
    return out


async def _count(runtime: Any, q: Any) -> int:
    async with runtime.engine.connect() as conn:
        return int((await conn.execute(q)).scalar_one())


ORDERS = int(os.environ.get("SB_BENCH_PIPELINE_ORDERS", "3000"))
SERVERS = ("PostgreSQL", "Kafka")
Figures = dict[str, float]  # rate, statements, cpu (seconds per event), duplicates, SERVERS


REPS = int(os.environ.get("SB_BENCH_PIPELINE_REPS", "3"))
BASELINE_ORDERS = int(os.environ.get("SB_BENCH_PIPELINE_BASELINE_ORDERS", "300"))


async def run(n: int = ORDERS, seed: int = 7) -> None:
    """The pipeline with batch consumption (REPS times, median printed) and, in the middle of the
    same run, one transaction per record on the first BASELINE_ORDERS orders as the baseline (it
    is ~15x slower; its rate per event does not depend on how many events there are)."""
    if "consumer_batch_max" not in NotifierSettings.model_fields:
        print("pipeline: this kit has no batch consumption; one transaction per record")
        await once(n, seed, batch=None)
        return
    batched: list[Figures] = []
    baseline: Figures | None = None
    for rep in range(max(1, REPS)):
        batched.append(await once(n, seed, batch=NotifierSettings().consumer_batch_max))
        if rep == max(1, REPS) // 2 - 1 or REPS <= 1:
            baseline = await once(min(n, BASELINE_ORDERS), seed, batch=1)
    assert baseline is not None
    mid = {k: statistics.median(f[k] for f in batched) for k in batched[0]}
    rates = " / ".join(f"{f['rate']:,.0f}" for f in batched)
    print(
        f"pipeline median of {len(batched)} batched runs: {mid['rate']:,.0f} shipment events/s"
        f" (per run {rates}; goal 2,000/s),"
        f" {mid['rate'] / baseline['rate']:.1f}x the same run's one transaction per record"
        f" ({baseline['rate']:,.0f}/s); per event {mid['statements']:.2f} vs"
        f" {baseline['statements']:.2f} SQL statements, {mid['cpu'] * 1000:.2f} vs"
        f" {baseline['cpu'] * 1000:.2f} ms notifier CPU"
        + "".join(
            f", {mid[k] * 1000:.2f} vs {baseline[k] * 1000:.2f} ms {k} CPU"
            for k in SERVERS
            if k in mid and k in baseline
        )
        + f"; duplicate alerts {max(f['duplicates'] for f in [*batched, baseline]):.0f};"
        f" load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores"
    )


async def once(n: int, seed: int, *, batch: int | None) -> Figures:
    """Publish, consume, time, report; the figures of this run."""
    schema, topic = f"bench_{uuid.uuid4().hex[:8]}", f"bench.commerce.{uuid.uuid4().hex[:8]}"
    knobs: dict[str, Any] = {} if batch is None else {"consumer_batch_max": batch}
    settings = NotifierSettings(
        service=f"notifier-bench-{uuid.uuid4().hex[:6]}", bus="kafka", kafka_bootstrap=KAFKA,
        database_url=PG, db_schema=schema, auth_key_dir=str(Path(tempfile.mkdtemp()) / "keys"),
        log_level="WARNING", **knobs,
    )  # fmt: skip
    specs = [TopicSpec(t.name, t.partitions, t.retention_ms) for t in ALL_TOPICS]
    bus = KafkaBus(KAFKA, topics=[*specs, TopicSpec(topic, PARTITIONS, 3_600_000)])
    service = bootstrap(
        settings, bus=bus, clock=lambda: NOW, sender=NoProviders(),
        topic_names={COMMERCE.name: topic}, timers=False,
    )  # fmt: skip
    runtime = service.runtime
    statements = [0]
    event.listen(
        runtime.engine.sync_engine,
        "before_cursor_execute",
        lambda *_: statements.__setitem__(0, statements[0] + 1),
    )
    inbox = runtime.tables.inbox
    applied = select(func.count()).select_from(inbox).where(inbox.c.consumer == "commerce")
    try:
        await runtime.migrate()
        recs = records(n, seed, topic)
        await bus.start()  # producer only until the consumers are subscribed
        await bus.publish(recs)
        await bus.stop()
        await runtime.start()
        await bus.start()
        statements[0] = 0
        servers = bench_servers_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        while (first := await _count(runtime, applied)) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        joined = time.perf_counter()
        # counting the inbox costs PostgreSQL ~10 ms at 30k rows: rarely until the end is near
        while (done := await _count(runtime, applied)) < len(recs):  # noqa: ASYNC110
            await asyncio.sleep(0.05 if done > 0.9 * len(recs) else 0.5)
        end = time.perf_counter()
        costs = (statements[0] / len(recs), (time.process_time() - cpu) / len(recs))
        servers = {
            k: (v - servers[k]) / len(recs) for k, v in bench_servers_cpu().items() if k in servers
        }
        return await _report(
            runtime, len(recs), batch, (started, joined, end), first, costs, servers
        )
    finally:
        await bus.stop()
        await runtime.stop()
        admin = make_engine(PG)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def _report(
    runtime: Any, total: int, batch: int | None, times: tuple[float, float, float], first: int,
    costs: tuple[float, float], servers: dict[str, float],
) -> Figures:  # fmt: skip
    """Wall-clock rate (noisy on a shared machine), statements and CPU per event (notifier,
    PostgreSQL, Kafka) and the load average."""
    started, joined, end = times
    per_event, cpu = costs
    n = orm.notifications.c
    notes = await _count(runtime, select(func.count()).select_from(orm.notifications))
    dupes = await _count(
        runtime,
        select(func.count()).select_from(
            select(n.shipment_id, n.episode, n.delay_reason)
            .group_by(n.shipment_id, n.episode, n.delay_reason)
            .having(func.count() > 1)
            .subquery()
        ),
    )
    mode = "one transaction per record" if batch in (None, 1) else f"batches of <= {batch}"
    rate = (total - first) / (end - joined)
    print(
        f"pipeline [{mode}] Kafka -> notifier -> PostgreSQL, {PARTITIONS} partitions:"
        f" {total:,} commerce events applied in {end - started:.1f} s"
        f" ({joined - started:.1f} s joining the group):"
        f" {rate:,.0f} shipment events/s after the first"
        f" (goal 2,000/s); per event {per_event:.2f} SQL statements and {cpu * 1000:.2f} ms of"
        f" notifier CPU (= {1 / cpu:,.0f} events per notifier CPU-second)"
        + "".join(f", {v * 1000:.2f} ms of {k} CPU" for k, v in servers.items())
        + f"; {notes:,} notifications, duplicate alerts (shipment+episode+reason): {dupes};"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    figures = {"rate": rate, "statements": per_event, "cpu": cpu, "duplicates": float(dupes)}
    return figures | servers


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(run(*args))
