"""analytics: KPI query latency by stored size, bucket update throughput, and freshness.

    SB_KAFKA_PORT=29092 SB_PG_PORT=25432 python -m bench.analytics_kpis [sizes...]

1. Query latency: `GET /v1/kpis` (all KPIs, total, `group_by=queue` and `group_by=channel` over
   the 30 days of the data, Oct 1-30, which October's monthly rollups minus Oct 31 serve; total
   over 30 days from a noon, the same plus two ragged half days from the 6-hourly totals; total
   and `group_by=queue` over the last 30 days across two months, Oct 15 - Nov 14, per queue read
   as weeks of the month; `group_by=queue` over Oct 2-31, October minus a whole day of rows)
   and `GET /v1/trends/categories` over 30 days x 50 queues, through the
   real app in process (httpx ASGI transport, tokens checked), at 10^5, 10^6 and 10^7 stored
   events (argv overrides); SB_BENCH_ANALYTICS_QUERIES (100) samples after 2 warm-ups, fewer
   (>= 3) past SB_BENCH_ANALYTICS_BUDGET_S (60). The p99 is the nearest rank: of 100 samples
   the second largest (of the 20 taken before, it was the largest: one noisy sample decided it);
   the queries of the three sizes take ≈ 30-35 s in process at load ≈ 1 (≈ 8 s with 20
   samples; loading the data, when not kept, takes minutes), as much again over HTTP.
   Before timing, the process's objects are frozen out of the garbage collector's reach, as
   `sbkit.serve` does once a deployed service started.
   The stored state is bulk-loaded: one day of synthetic events (50 queues x 10 agents: calls
   offered / answered / abandoned / completed, surveys; N/30 events) is folded by the
   consumer's own code (`ingest.increments` + `repository.collect`, the functions the batch
   consumer runs), COPYed into `kpi_components` and repeated for 30 days with
   `generate_series`; the rollups are then filled as migrations 0004-0011 backfill them, and
   every table VACUUM ANALYZEd (old days settled, as autovacuum leaves them). Every table is
   filled in primary-key order, so a period's rows lie together as the consumer's writes leave
   them (they come in time order), not spread by a hash aggregate's order. Section 2 checks
   that this bulk fold and the real consumer (Kafka -> analytics -> PostgreSQL) store identical
   rows for the same events, and that the rollups the consumer kept equal its 15-minute rows.
2. Throughput: calls and surveys published to copies of the topics, then analytics' consumers
   (kit batch consumption, `fold_batch`) timed until every event is in the inbox; the CPU per
   event of analytics (this process) and of PostgreSQL and Kafka (from /proc: bench.procstat).
3. Freshness: one call offered at a time, produced to Kafka, `/v1/kpis` polled until it counts.

SB_BENCH_ANALYTICS_KEEP=1 keeps each size's schema (`bench_an_keep_<n>`) and reuses it when it
is there (migrated to the current code, not loaded again: the 10^7 load takes minutes);
SB_BENCH_ANALYTICS_PIPELINE=0 skips sections 2-3 (query latency only). SB_BENCH_ANALYTICS_HTTP=<port>
also measures the queries over real HTTP against `python -m analytics` (uvicorn, its own
process, GC frozen after start as deployed) on that port, besides the in-process figures.

Writes .data/bench/analytics_kpis.json. Numbers are noisy on a shared machine (load printed).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, text

from analytics.adapters import repository
from analytics.adapters.orm import components
from analytics.bootstrap import AnalyticsService, bootstrap
from analytics.config import AnalyticsSettings
from analytics.domain import components as comp
from analytics.domain.parts import WAIT_HISTOGRAMS, WAIT_S_BLOCK, WAIT_S_KEPT
from analytics.domain.sketch import BLOCK
from analytics.entrypoints.consumers import TOPICS
from analytics.service_layer import ingest
from bench.procstat import bench_servers_cpu
from sbcontracts.catalog import encode
from sbcontracts.envelope import EventData, new_event
from sbcontracts.events.ingest import (
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallOffered,
    SurveyKind,
    SurveyResponded,
)
from sbcontracts.topics import ALL_TOPICS, CALLS, partition_key
from sbkit.auth import Keyring, TokenVerifier, mint
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord
from sbkit.db.engine import make_engine
from sbkit.serve import freeze_startup_objects, tune_collector
from sbkit.web import standalone_app

KAFKA = f"127.0.0.1:{os.environ.get('SB_KAFKA_PORT', '19092')}"
PG = f"postgresql+asyncpg://postgres@127.0.0.1:{os.environ.get('SB_PG_PORT', '15432')}/switchboard"
TENANT = "bench"
DAY0 = datetime(2026, 10, 1, tzinfo=UTC)
DAYS, QUEUES, AGENTS = 30, 50, 10  # agents per queue
# rollup -> (its period column, the table it is summed from, kept dimensions)
ROLLUPS = {
    "kpi_hourly_total": ("hour", "kpi_components", ()),
    "kpi_six_hourly_total": ("six_hours", "kpi_hourly_total", ()),
    "kpi_daily_total": ("day", "kpi_components", ()),
    "kpi_daily_queue": ("day", "kpi_components", ("queue",)),
    "kpi_daily_channel": ("day", "kpi_components", ("channel",)),
    "kpi_weekly_queue": ("week", "kpi_daily_queue", ("queue",)),
    "kpi_monthly_total": ("month", "kpi_daily_total", ()),
    "kpi_monthly_queue": ("month", "kpi_daily_queue", ("queue",)),
    "kpi_monthly_channel": ("month", "kpi_daily_channel", ("channel",)),
    "kpi_daily_queue_blocks": ("day", "kpi_daily_queue", ("queue",)),
    "kpi_weekly_queue_blocks": ("week", "kpi_weekly_queue", ("queue",)),
    "kpi_monthly_queue_blocks": ("month", "kpi_monthly_queue", ("queue",)),
}
# the stored bin of a rollup whose bins are coarser (`parts.coarse_bin`, migrations 0008-0011)
_COARSE_BIN = (
    f"CASE WHEN name LIKE 'sk:%' THEN bin / {BLOCK}"
    f" WHEN name IN {WAIT_HISTOGRAMS} AND bin > {WAIT_S_KEPT} THEN {WAIT_S_KEPT + 1}"
    f" WHEN name IN {WAIT_HISTOGRAMS} THEN (bin + {WAIT_S_BLOCK - 1}) / {WAIT_S_BLOCK}"
    f" * {WAIT_S_BLOCK} ELSE bin END"
)
BINS = {t: _COARSE_BIN for t in ROLLUPS if t.endswith("_blocks")}
SOURCE_TIME = {
    "kpi_components": "interval_start",
    "kpi_hourly_total": "hour",
    "kpi_weekly_queue": "week",
    "kpi_monthly_queue": "month",
    **{r: "day" for r in ROLLUPS if "daily" in r},
}


def _trunc(period: str, column: str) -> str:
    utc = f"{column} AT TIME ZONE 'UTC'"
    if period == "six_hours":
        start = (
            f"date_trunc('day', {utc}) + interval '6 hours' * floor(extract(hour FROM {utc}) / 6)"
        )
        return f"({start}) AT TIME ZONE 'UTC'"
    if period == "week":  # of the month: from its days 1, 8, 15, 22, 29 (`components.week_of`)
        day = f"date_trunc('day', {utc})"
        start = f"{day} - interval '1 day' * ((CAST(extract(day FROM {utc}) AS integer) - 1) % 7)"
        return f"({start}) AT TIME ZONE 'UTC'"
    return f"date_trunc('{period}', {utc}) AT TIME ZONE 'UTC'"


REASONS = ("delivery", "returns", "billing", "product", "account")
SIZES = (10**5, 10**6, 10**7)
QUERIES = int(os.environ.get("SB_BENCH_ANALYTICS_QUERIES", "100"))
WARMUP = int(os.environ.get("SB_BENCH_ANALYTICS_WARMUP", "2"))
BUDGET_S = float(os.environ.get("SB_BENCH_ANALYTICS_BUDGET_S", "60"))  # per query kind and size
KEEP = os.environ.get("SB_BENCH_ANALYTICS_KEEP", "") not in ("", "0")
HTTP_PORT = int(os.environ.get("SB_BENCH_ANALYTICS_HTTP", "0"))
RUN_PIPELINE = os.environ.get("SB_BENCH_ANALYTICS_PIPELINE", "1") != "0"
PIPELINE_EVENTS = int(os.environ.get("SB_BENCH_ANALYTICS_EVENTS", "30000"))
OUT = Path(os.environ.get("SB_DATA_DIR", ".data/bench")) / "analytics_kpis.json"


def day_events(day: datetime, n: int, rnd: random.Random) -> Iterator[tuple[str, EventData]]:
    """About n events of one day: (partition key, data); a call is 3 events, 1 in 10 a survey."""
    i = 0
    while i < n:
        q = rnd.randrange(QUEUES)
        queue, agent = f"q{q:02d}", f"a{q:02d}-{rnd.randrange(AGENTS)}"
        cid = f"c{uuid.uuid4().hex[:12]}"
        at = day + timedelta(seconds=rnd.uniform(0, 86_000))
        wait = int(rnd.expovariate(1 / 30_000))
        base = {"call_id": cid, "queue": queue}
        yield cid, CallOffered(**base, occurred_at=at)
        if rnd.random() < 0.12:
            yield cid, CallAbandoned(**base, occurred_at=at, wait_ms=wait)
            i += 2
            continue
        picked = at + timedelta(milliseconds=wait)
        yield cid, CallAnswered(**base, agent_id=agent, occurred_at=picked, wait_ms=wait)
        talk, hold, wrap = (int(rnd.expovariate(1 / m)) for m in (240_000, 20_000, 30_000))
        ended = picked + timedelta(milliseconds=talk + hold + wrap)
        done = CallCompleted(
            **base, agent_id=agent, occurred_at=ended, talk_ms=talk, hold_ms=hold, wrap_ms=wrap
        )
        yield cid, done
        i += 3
        if rnd.random() < 0.1:
            kind = rnd.choice(list(SurveyKind))
            score = {"csat": rnd.randint(1, 5), "nps": rnd.randint(0, 10)}.get(kind.value, 4)
            yield (
                cid,
                SurveyResponded(
                    response_id=cid,
                    kind=kind,
                    score=score,
                    responded_at=ended + timedelta(minutes=5),
                ),
            )
            i += 1


def fold(events: list[tuple[str, EventData]], rnd: random.Random) -> repository.Deltas:
    """The consumer's own fold of the events (plus one classified case per 20 calls: what
    routing's classification adds through the derived path, for the category trends)."""
    deltas: repository.Deltas = {}
    for _, data in events:
        for bucket, incs in ingest.increments(TENANT, data):
            repository.collect(deltas, bucket, incs)
        if isinstance(data, CallOffered) and rnd.random() < 0.05:
            bucket = comp.Bucket(
                TENANT, comp.interval_of(data.occurred_at), data.queue or "", "email"
            )
            repository.collect(
                deltas, bucket, comp.ticket_classified(rnd.choice(REASONS), "neutral")
            )
    return deltas


def _settings(schema: str, **extra: Any) -> AnalyticsSettings:
    return AnalyticsSettings(
        service=f"analytics-bench-{uuid.uuid4().hex[:6]}", bus="kafka", kafka_bootstrap=KAFKA,
        database_url=PG, db_schema=schema, auth_key_dir=str(Path(tempfile.mkdtemp()) / "keys"),
        log_level="WARNING", **extra,
    )  # fmt: skip


async def _drop(schema: str) -> None:
    admin = make_engine(PG)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


class Client:
    """The analytics app in process, with a token of the bench tenant."""

    def __init__(
        self, service: AnalyticsService, settings: AnalyticsSettings, url: str | None = None
    ) -> None:
        self.ring = Keyring.load(Path(settings.auth_key_dir))
        self.app = standalone_app(service.runtime, service.routers, TokenVerifier(self.ring))
        _, token = mint(self.ring, tenant_id=TENANT, scopes=["kpis:*"], ttl_s=3600)
        self.headers = {"authorization": f"Bearer {token}"}
        self.http = (  # url: a server process over TCP, else the app in this process
            httpx.AsyncClient(base_url=url)
            if url
            else httpx.AsyncClient(
                transport=httpx.ASGITransport(self.app), base_url="http://analytics"
            )
        )

    async def get(self, url: str, **params: Any) -> Any:
        r = await self.http.get(url, params=params, headers=self.headers)
        r.raise_for_status()
        return r.json()


async def _load(service: AnalyticsService, n: int) -> tuple[int, dict[str, int], dict[str, float]]:
    """Bulk-load 30 days of about n events; returns stored rows, rollup rows, seconds per step."""
    rnd = random.Random(n)
    t0 = time.perf_counter()
    events = list(day_events(DAY0, n // DAYS, rnd))
    t1 = time.perf_counter()
    deltas = fold(events, rnd)
    t2 = time.perf_counter()
    rows = [
        (b.tenant, b.interval, b.queue, b.channel, b.agent, name, bin_, v)
        for (b, name, bin_), v in deltas.items()
        if v  # the consumer stores no zero increments
    ]
    schema = service.runtime.settings.db_schema
    async with service.runtime.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection  # asyncpg's connection (None only once it is closed)
        assert driver is not None
        await driver.copy_records_to_table("kpi_components", records=rows, schema_name=schema)
        t = f'"{schema}".kpi_components'
        dims = "tenant_id, interval_start + k * interval '1 day', queue, channel, agent, name, bin"
        # every INSERT below in primary-key order: the consumer writes rows as their time
        # comes, so a period's rows lie together in the table; a hash aggregate's order spread
        # one day of kpi_daily_queue at 10^7 over half the table's pages (its 38k rows read
        # 3.5 -> 14-21 ms)
        await conn.execute(  # calls ending after midnight add to the next day's rows: sum them
            text(
                f"INSERT INTO {t} SELECT {dims}, sum(value) FROM {t},"
                f" generate_series(1, {DAYS - 1}) AS k GROUP BY 1, 2, 3, 4, 5, 6, 7"
                " ORDER BY 1, 2, 3, 4, 5, 6, 7"
                " ON CONFLICT (tenant_id, interval_start, queue, channel, agent, name, bin)"
                " DO UPDATE SET value = kpi_components.value + excluded.value"
            )
        )
        for rollup, (period, source, kept) in ROLLUPS.items():  # what migrations 0004-11 do
            keys = ", ".join(("tenant_id", period, *kept, "name", "bin"))
            start = _trunc(period, SOURCE_TIME[source])
            bin_ = BINS.get(rollup, "bin")
            by = ", ".join(str(i) for i in range(1, len(kept) + 5))
            await conn.execute(
                text(
                    f'INSERT INTO "{schema}".{rollup} ({keys}, value)'
                    f" SELECT tenant_id, {start}, {', '.join((*kept, 'name', bin_))}, sum(value)"
                    f' FROM "{schema}".{source} GROUP BY {by} ORDER BY {by}'
                )
            )
        await conn.commit()
    async with service.runtime.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("kpi_components", *ROLLUPS):  # settled old days, as autovacuum leaves them
            await conn.execute(text(f'VACUUM (ANALYZE) "{schema}".{table}'))
        stored = int(
            (await conn.execute(select(func.count()).select_from(components))).scalar_one()
        )
        rolled = {
            r: int((await conn.execute(text(f'SELECT count(*) FROM "{schema}".{r}'))).scalar_one())
            for r in ROLLUPS
        }
    t3 = time.perf_counter()
    return stored, rolled, {"generate_s": t1 - t0, "fold_s": t2 - t1, "copy_and_repeat_s": t3 - t2}


async def query_latency(n: int) -> dict[str, Any]:
    """p50/p99 of the queries over 30 days x 50 queues with about n events stored."""
    schema = f"bench_an_keep_{n}" if KEEP else f"bench_an_{uuid.uuid4().hex[:8]}"
    settings = _settings(schema)
    service = bootstrap(settings, bus=KafkaBus(KAFKA, topics=[]))
    try:
        await service.runtime.migrate()
        kept = await _kept(service) if KEEP else None
        stored, rolled, load = kept or await _load(service, n)
        client = Client(service, settings)
        span = {"from": DAY0.isoformat(), "to": (DAY0 + timedelta(days=DAYS)).isoformat()}
        noon = {
            k: (datetime.fromisoformat(v) + timedelta(hours=12)).isoformat()
            for k, v in span.items()
        }
        # the last 30 days across two months (per queue: weeks of the month, 5 weeks minus
        # Nov 14; the total: its days); the data has October only, so 17 of its days hold rows
        cross = {
            "from": (DAY0 + timedelta(days=14)).isoformat(),
            "to": (DAY0 + timedelta(days=44)).isoformat(),
        }
        # the last 30 days to a month's end: October minus a whole day of rows (Oct 1; the
        # Oct 31 that Oct 1-30 subtracts holds only calls ending after midnight)
        to_end = {
            "from": (DAY0 + timedelta(days=1)).isoformat(),
            "to": (DAY0 + timedelta(days=31)).isoformat(),
        }
        queries = {
            "kpis total": ("/v1/kpis", span),
            "kpis group_by=queue": ("/v1/kpis", {**span, "group_by": "queue"}),
            "kpis group_by=channel": ("/v1/kpis", {**span, "group_by": "channel"}),
            "kpis total, 30 days from a noon": ("/v1/kpis", noon),
            "kpis asa,service_level per day": (
                "/v1/kpis", {**span, "kpi": "asa,service_level", "interval": "1d"},
            ),
            "trends/categories per day": ("/v1/trends/categories", {**span, "interval": "1d"}),
            "kpis total, Oct 15 - Nov 14": ("/v1/kpis", cross),
            "kpis group_by=queue, Oct 15 - Nov 14": ("/v1/kpis", {**cross, "group_by": "queue"}),
            "kpis group_by=queue, Oct 2-31": ("/v1/kpis", {**to_end, "group_by": "queue"}),
        }  # fmt: skip
        out: dict[str, Any] = {
            "events": n, "stored_rows": stored, "rollup_rows": rolled, "load": load, "queries": {}
        }  # fmt: skip
        first = await client.get("/v1/kpis", **span, kpi="offered,answered,abandoned,handled")
        out["counted"] = {k: v["value"] for k, v in first["rows"][0]["kpis"].items()}
        # what `sbkit.serve` does once the service started: the process's objects (here the
        # bench's too) out of the collector's reach; unfrozen, a full collection walked them in
        # the timed reads (a 90 ms pause at 10^7, the p99 of group_by=queue)
        tune_collector()
        freeze_startup_objects()
        out["queries"] = await _timed(client, queries)
        await client.http.aclose()
        if HTTP_PORT:
            with _server(settings, HTTP_PORT) as url:
                remote = Client(service, settings, url)
                out["queries_http"] = await _timed(remote, queries)
                await remote.http.aclose()
        return out
    finally:
        await service.runtime.stop()
        if not KEEP:
            await _drop(schema)


async def _timed(client: Client, queries: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """p50/p99 and the client process's CPU median of each query."""
    out = {}
    for name, (url, params) in queries.items():
        times, cpu = [], []
        for i in range(QUERIES + WARMUP):
            t, c = time.perf_counter(), time.process_time()
            await client.get(url, **params)
            if i >= WARMUP:
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
            if len(times) >= min(3, QUERIES) and sum(times) > BUDGET_S * 1000:
                break  # slow reads at 10^7: fewer samples, not hours
        out[name] = {
            "p50_ms": _pct(times, 50),
            "p99_ms": _pct(times, 99),
            "app_cpu_ms_median": statistics.median(cpu),
            "samples": len(times),
        }
    return out


@contextlib.contextmanager
def _server(settings: AnalyticsSettings, port: int) -> Iterator[str]:
    """`python -m analytics` on the bench schema (a local bus file: it consumes nothing)."""
    bus = Path(tempfile.mkdtemp()) / "bus.db"
    env = {
        **os.environ,
        "SB_DATABASE_URL": settings.database_url,
        "SB_DB_SCHEMA": settings.db_schema or "",
        "SB_BUS": "local",
        "SB_LOCAL_BUS_PATH": str(bus),
        "SB_AUTH_KEY_DIR": settings.auth_key_dir,
        "SB_PORT": str(port),
        "SB_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen([sys.executable, "-m", "analytics"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("python -m analytics exited")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def _kept(service: AnalyticsService) -> tuple[int, dict[str, int], dict[str, float]] | None:
    """A kept schema's stored and rollup rows (None: empty, to be loaded)."""
    schema = service.runtime.settings.db_schema
    async with service.runtime.engine.connect() as conn:
        stored = int(
            (await conn.execute(select(func.count()).select_from(components))).scalar_one()
        )
        if not stored:
            return None
        rolled = {
            r: int((await conn.execute(text(f'SELECT count(*) FROM "{schema}".{r}'))).scalar_one())
            for r in ROLLUPS
        }
    return stored, rolled, {"generate_s": 0.0, "fold_s": 0.0, "copy_and_repeat_s": 0.0}


async def pipeline(n: int) -> dict[str, Any]:
    """Events/s through Kafka -> consumers -> PostgreSQL, the bulk fold checked equal, freshness."""
    schema = f"bench_an_{uuid.uuid4().hex[:8]}"
    settings = _settings(schema)
    names = {t: f"bench.{t}.{uuid.uuid4().hex[:6]}" for t in TOPICS}
    specs = [TopicSpec(t.name, t.partitions, t.retention_ms) for t in ALL_TOPICS]
    specs += [TopicSpec(name, 6, 3_600_000) for name in names.values()]
    bus = KafkaBus(KAFKA, topics=specs, linger_ms=1)
    service = bootstrap(settings, bus=bus, topic_names=names)
    runtime = service.runtime
    inbox = runtime.tables.inbox
    try:
        await runtime.migrate()
        events = list(day_events(DAY0, n, random.Random(1)))
        recs = [
            OutgoingRecord(
                names[data.topic],
                partition_key(TENANT, key),
                encode(new_event(data, tenant_id=TENANT, source="bench")),
            )
            for key, data in events
        ]
        await bus.start()  # producer only, until the consumers subscribe
        await bus.publish(recs)
        await bus.stop()
        await runtime.start()
        await bus.start()
        count = select(func.count()).select_from(inbox)

        async def applied() -> int:
            async with runtime.engine.connect() as conn:
                return int((await conn.execute(count)).scalar_one())

        started, cpu = time.perf_counter(), time.process_time()
        while (first := await applied()) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        joined, servers = time.perf_counter(), bench_servers_cpu()
        while await applied() < len(recs):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        end, cpu = time.perf_counter(), time.process_time() - cpu
        servers = {k: v - servers.get(k, 0.0) for k, v in bench_servers_cpu().items()}
        rate = (len(recs) - first) / (end - joined)
        async with runtime.engine.connect() as conn:
            stored = {
                (r.tenant_id, r.interval_start, r.queue, r.channel, r.agent, r.name, r.bin): r.value
                for r in await conn.execute(select(components))
            }
            rollups_ok = await _rollups_equal_components(conn, schema)
        bulk = {
            (b.tenant, b.interval, b.queue, b.channel, b.agent, name, bin_): v
            for (b, name, bin_), v in fold(events, random.Random(0)).items()
            if v and not name.startswith(("classified", "cat:", "sent:"))
        }
        if bulk != stored:
            diff = set(bulk.items()) ^ set(stored.items())
            print(f"bulk fold != consumer on {len(diff)} rows, e.g. {sorted(diff, key=str)[:4]}")
        fresh = await freshness(service, settings, names[CALLS.name])
        return {
            "events": len(recs),
            "seconds": end - started,
            "joining_s": joined - started,
            "events_per_s": rate,
            "analytics_cpu_ms_per_event": cpu * 1000 / len(recs),
            # after the first applied event, as the rate (the bench's count(*) polls included)
            "servers_cpu_ms_per_event": {
                k: v * 1000 / (len(recs) - first) for k, v in servers.items()
            },
            "bulk_fold_equals_consumer": bulk == stored,
            "rollups_equal_components": rollups_ok,
            "rows": len(stored),
            "freshness": fresh,
        }
    finally:
        await bus.stop()
        await runtime.stop()
        await _drop(schema)


async def _rollups_equal_components(conn: Any, schema: str) -> bool:
    """Whether the rollups the consumers kept equal the 15-minute rows summed per period."""
    for rollup, (period, _, dims) in ROLLUPS.items():
        cols = ", ".join(("tenant_id", *dims, "name", "bin"))
        start = _trunc(period, "interval_start")
        bin_ = BINS.get(rollup, "bin")
        summed = (
            f"SELECT {cols.replace('bin', bin_ + ' AS bin')}, {start} AS at, sum(value) AS value"
            f' FROM "{schema}".kpi_components GROUP BY {cols.replace("bin", bin_)}, {start}'
        )
        kept = f'SELECT {cols}, {period} AS at, value FROM "{schema}".{rollup}'
        diff = f"SELECT count(*) FROM (({summed} EXCEPT {kept}) UNION ({kept} EXCEPT {summed})) d"
        if (await conn.execute(text(diff))).scalar_one():
            return False
    return True


async def freshness(service: AnalyticsService, settings: AnalyticsSettings, topic: str) -> Any:
    """Produced -> counted in /v1/kpis, one call offered at a time (polled every 5 ms)."""
    client = Client(service, settings)
    at = DAY0 + timedelta(days=3)  # an interval of its own
    span = {"from": at.isoformat(), "to": (at + timedelta(minutes=15)).isoformat()}
    lags = []
    for i in range(30):
        data = CallOffered(call_id=f"fresh{i}", queue="q00", occurred_at=at)
        rec = OutgoingRecord(
            topic,
            partition_key(TENANT, f"fresh{i}"),
            encode(new_event(data, tenant_id=TENANT, source="bench")),
        )
        t = time.perf_counter()
        await service.runtime.bus.publish([rec])
        while True:
            got = await client.get("/v1/kpis", **span, kpi="offered")
            if got["rows"][0]["kpis"]["offered"]["value"] == i + 1:
                break
            await asyncio.sleep(0.005)
        lags.append((time.perf_counter() - t) * 1000)
    await client.http.aclose()
    return {"p50_ms": statistics.median(lags), "p99_ms": _pct(lags, 99), "samples": len(lags)}


def _print_pipeline(result: dict[str, Any], p: dict[str, Any]) -> None:
    result["pipeline"] = p
    print(
        f"bucket updates Kafka -> analytics (batch fold) -> PostgreSQL: {p['events']:,} events"
        f" (calls, surveys) in {p['seconds']:.1f} s ({p['joining_s']:.1f} s joining):"
        f" {p['events_per_s']:,.0f} events/s after the first (goal 5,000/s),"
        f" analytics CPU {p['analytics_cpu_ms_per_event']:.3f} ms/event"
        f" (= {1000 / p['analytics_cpu_ms_per_event']:,.0f} events per CPU-second),"
        + "".join(f" {k} {v:.3f}" for k, v in p["servers_cpu_ms_per_event"].items())
        + " ms/event;"
        f" bulk fold == consumer's rows: {p['bulk_fold_equals_consumer']},"
        f" rollups == summed 15-minute rows: {p['rollups_equal_components']}"
    )
    f = p["freshness"]
    print(
        f"freshness produced -> visible in /v1/kpis: p50 {f['p50_ms']:.0f} ms,"
        f" p99 {f['p99_ms']:.0f} ms over {f['samples']} (goal p99 <= 1 s)"
    )


async def main(sizes: tuple[int, ...]) -> None:
    load = os.getloadavg()
    print(f"analytics bench; load average {load[0]:.1f} on {os.cpu_count()} cores (noisy)")
    result: dict[str, Any] = {"load_average": load[0], "sizes": [], "at": time.time()}
    if RUN_PIPELINE:
        _print_pipeline(result, await pipeline(PIPELINE_EVENTS))
    for n in sizes:
        r = await query_latency(n)
        result["sizes"].append(r)
        ld = r["load"]
        print(
            f"{n:,} events ({r['stored_rows']:,} component rows, rollups {r['rollup_rows']},"
            f" 30 days x {QUEUES} queues):"
            f" loaded in {sum(ld.values()):.1f} s (generate {ld['generate_s']:.1f}, fold"
            f" {ld['fold_s']:.1f}, COPY + repeat {ld['copy_and_repeat_s']:.1f}); counted {r['counted']}"
        )
        for name, q in r["queries"].items():
            print(
                f"   {name:34} p50 {q['p50_ms']:8.1f} ms  p99 {q['p99_ms']:8.1f} ms (goal p99 <= 20),"
                f" app CPU median {q['app_cpu_ms_median']:.1f} ms, {q['samples']} samples"
            )
        for name, q in r.get("queries_http", {}).items():
            print(
                f"   HTTP {name:29} p50 {q['p50_ms']:8.1f} ms  p99 {q['p99_ms']:8.1f} ms"
                f" (python -m analytics, own process), client CPU median"
                f" {q['app_cpu_ms_median']:.1f} ms, {q['samples']} samples"
            )
    result["load_average_end"] = os.getloadavg()[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str))
    print(f"load average at the end {result['load_average_end']:.1f}; wrote {OUT}")


if __name__ == "__main__":
    asyncio.run(main(tuple(int(float(a)) for a in sys.argv[1:]) or SIZES))
