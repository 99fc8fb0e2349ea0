"""Quiescence (lag 0, outboxes empty) and the comparison of what the stack holds with the input.

Figures come from each service's own tables (read-only queries), analytics' public KPI API
and the outbound topic adapters read. `lost` = expected items missing, `duplicated` = items
present more than once (or counted more often than they happened).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from sbcontracts.catalog import decode
from tests.reliability.stack import SERVICES
from tests.reliability.workload import Expected


@dataclass
class Row:
    """One compared item: expected, found (distinct), lost, duplicated."""

    what: str
    expected: int
    found: int
    lost: int
    duplicated: int


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, what: str, expected: int, distinct: int, total: int | None = None) -> None:
        total = distinct if total is None else total
        self.rows.append(
            Row(what, expected, distinct, max(0, expected - distinct), max(0, total - expected))
        )

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rows)

    @property
    def duplicated(self) -> int:
        return sum(r.duplicated for r in self.rows)

    def table(self) -> str:
        lines = [f"{'item':<34}{'expected':>9}{'found':>9}{'lost':>7}{'dup':>6}"]
        lines += [
            f"{r.what:<34}{r.expected:>9}{r.found:>9}{r.lost:>7}{r.duplicated:>6}"
            for r in self.rows
        ]
        lines.append(f"{'TOTAL':<34}{'':>9}{'':>9}{self.lost:>7}{self.duplicated:>6}")
        return "\n".join(lines)


# ---------------------------------------------------------------- quiescence

STATE: dict[str, str] = {"last": ""}  # what the last quiescence probe saw (for reports)


async def consumer_lag(bootstrap: str) -> int:
    """Records not yet committed by the services' consumer groups, over every partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups()]
        total = 0
        for group in groups:
            if not group.startswith(SERVICES):
                continue
            offsets = await admin.list_consumer_group_offsets(group)
            if not offsets:
                continue
            ends = await consumer.end_offsets(list(offsets))
            total += sum(max(0, ends[tp] - om.offset) for tp, om in offsets.items())
        return total
    finally:
        await consumer.stop()
        await admin.close()


async def outbox_backlog(conn: asyncpg.Connection) -> int:
    return sum([int(await conn.fetchval(f"SELECT count(*) FROM {s}.outbox")) for s in SERVICES])


async def wait_quiet(
    bootstrap: str, dsn: str, probe: Any, *, timeout_s: float, settle_s: float = 3.0
) -> tuple[float, bool]:
    """Wait until lag = 0, outboxes are empty and `probe()` is stable: (seconds, whether so)."""
    t0 = time.monotonic()
    last: Any = None
    stable_since = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                backlog = await outbox_backlog(conn)
            finally:
                await conn.close()
            lag = await consumer_lag(bootstrap)
            now = await probe()
        except Exception:  # noqa: BLE001 - a server still coming back: ask again
            await asyncio.sleep(1)
            continue
        STATE["last"] = f"outbox rows {backlog}, consumer lag {lag}"
        if (backlog, lag, now) != last:
            last, stable_since = (backlog, lag, now), time.monotonic()
        elif backlog == 0 and lag == 0 and time.monotonic() - stable_since >= settle_s:
            return time.monotonic() - t0, True
        await asyncio.sleep(1)
    return time.monotonic() - t0, False


# ---------------------------------------------------------------- figures


async def counts(conn: asyncpg.Connection, tenant: str) -> dict[str, tuple[int, int]]:
    """(total, distinct) per item, straight from the services' tables."""
    q: dict[str, str] = {
        "ingest messages": "SELECT count(*), count(DISTINCT (channel, provider_message_id)) "
        "FROM ingest.messages WHERE tenant_id = $1",
        "crm timeline: messages": "SELECT count(*), count(DISTINCT ref) FROM crm.timeline "
        "WHERE tenant_id = $1 AND kind = 'message'",
        "crm timeline: orders": "SELECT count(*), count(DISTINCT ref) FROM crm.timeline "
        "WHERE tenant_id = $1 AND kind = 'order'",
        "routing case messages": "SELECT count(*), count(DISTINCT message_id) "
        "FROM routing.ticket_messages WHERE tenant_id = $1 AND direction = 'inbound'",
        "routing cases": "SELECT count(*), count(DISTINCT customer_id) FROM routing.tickets "
        "WHERE tenant_id = $1 AND merged_into IS NULL",
        "notifier alerts": "SELECT count(*), count(DISTINCT shipment_id) "
        "FROM notifier.notifications WHERE tenant_id = $1",
    }
    q["analytics surveys"] = (
        "SELECT coalesce(sum(value), 0), coalesce(sum(value), 0) FROM analytics.kpi_components "
        "WHERE tenant_id = $1 AND name = 'csat_n'"
    )
    out = {}
    for name, sql in q.items():
        total, distinct = await conn.fetchrow(sql, tenant)
        out[name] = (int(total), int(distinct))
    return out


async def kpis(client: httpx.AsyncClient, started: datetime) -> dict[str, int]:
    """Counts from analytics' public API over the whole run."""
    params = {
        "from": (started - timedelta(days=3)).isoformat(),
        "to": (started + timedelta(days=2)).isoformat(),
        "kpi": "messages,opened,offered,answered,abandoned",
    }
    resp = await client.get("/v1/kpis", params=params)
    if resp.status_code != 200:  # the problem body says why (run 3 of last stop got a bare 401)
        raise AssertionError(f"analytics /v1/kpis answered {resp.status_code}: {resp.text}")
    row = resp.json()["rows"][0]["kpis"]
    return {k: int(v.get("value") or 0) for k, v in row.items()}


async def alerts_sent(bootstrap: str, tenant: str) -> tuple[int, int]:
    """Alerts on sb.outbound.v1 (what adapters deliver): (distinct messages, recipients)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic("sb.outbound.v1")
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic("sb.outbound.v1") or set()
        tps = [TopicPartition("sb.outbound.v1", p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        per_recipient: dict[str, set[str]] = defaultdict(set)
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                for r in recs:
                    ev = decode(r.value or b"")
                    if ev.tenantid == tenant and ev.data.ticket_id is None:
                        per_recipient[ev.data.recipient.value].add(ev.data.message_id)
        return sum(len(v) for v in per_recipient.values()), len(per_recipient)
    finally:
        await consumer.stop()


async def compare(
    *,
    dsn: str,
    bootstrap: str,
    tenant: str,
    exp: Expected,
    analytics: httpx.AsyncClient,
    started: datetime,
) -> Report:
    conn = await asyncpg.connect(dsn)
    try:
        c = await counts(conn, tenant)
    finally:
        await conn.close()
    k = await kpis(analytics, started)
    sent, recipients = await alerts_sent(bootstrap, tenant)
    rep = Report()
    rep.add("ingest: messages", exp.messages, c["ingest messages"][1], c["ingest messages"][0])
    total, distinct = c["crm timeline: messages"]
    rep.add("crm: timeline (messages)", exp.messages, distinct, total)
    total, distinct = c["crm timeline: orders"]
    rep.add("crm: timeline (orders)", exp.orders, distinct, total)
    total, distinct = c["routing case messages"]
    rep.add("routing: messages on cases", exp.messages, distinct, total)
    total, distinct = c["routing cases"]
    rep.add("routing: cases", exp.cases, distinct, total)
    rep.add(
        "analytics: KPI messages",
        exp.messages,
        min(k.get("messages", 0), exp.messages),
        k.get("messages", 0),
    )
    rep.add(
        "analytics: KPI cases opened",
        exp.cases,
        min(k.get("opened", 0), exp.cases),
        k.get("opened", 0),
    )
    for name, want in (
        ("offered", exp.calls),
        ("answered", exp.answered),
        ("abandoned", exp.abandoned),
    ):
        got = k.get(name, 0)
        rep.add(f"analytics: KPI calls {name}", want, min(got, want), got)
    got = c["analytics surveys"][0]
    rep.add("analytics: survey answers", exp.surveys, min(got, exp.surveys), got)
    total, distinct = c["notifier alerts"]
    rep.add("notifier: alerts", exp.delayed_shipments, distinct, total)
    rep.add("notifier: alerts sent (outbound)", exp.delayed_shipments, recipients, sent)
    return rep
