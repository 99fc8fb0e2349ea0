"""On real Kafka and PostgreSQL: a stalled shipment is alerted once by the timer, in quiet hours deferred;
a resent history adds nothing; an open case for the order suppresses the alert with a reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from notifier.adapters import orm
from notifier.bootstrap import bootstrap
from notifier.config import NotifierSettings
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.routing import TicketOpened
from sbcontracts.topics import (
    ALL_TOPICS,
    COMMERCE,
    CUSTOMERS,
    MESSAGES,
    RECEIPTS,
    TICKETS,
    partition_key,
)
from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord
from sbkit.db.engine import make_engine
from sbkit.web import standalone_app
from tests.conftest import unique
from tests.unit.notifier.conftest import START, Clock, FakeSender, customer, order, scan

RENAMED = (COMMERCE, CUSTOMERS, TICKETS, MESSAGES, RECEIPTS)


def _as(tenant: str, event: CloudEvent[Any]) -> CloudEvent[Any]:
    return new_event(event.data, tenant_id=tenant, source="test")


async def _rows(service: Any, tenant: str) -> list[Any]:
    async with service.runtime.uow() as uow:
        q = select(orm.notifications).where(orm.notifications.c.tenant_id == tenant)
        return list((await uow.session.execute(q)).all())


async def _until(check: Callable[[], Any], limit_s: float = 30.0) -> None:
    for _ in range(int(limit_s / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_stalled_shipment_alerts_once_deferred_by_quiet_hours_and_open_case_suppresses(
    pg_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    schema = "notifier_" + unique("t").replace("-", "_")
    names = {t.name: unique(t.name) for t in RENAMED}
    specs = [TopicSpec(t.name, 3, t.retention_ms) for t in ALL_TOPICS]
    specs += [TopicSpec(n, 3, 3_600_000) for n in names.values()]
    bus = KafkaBus(kafka_bootstrap, topics=specs, linger_ms=1)
    settings = NotifierSettings(
        service=unique("notifier"), database_url=pg_url, db_schema=schema,
        auth_key_dir=str(tmp_path / "keys"), outbox_poll_ms=20, notifier_timer_poll_ms=100,
        retry_attempts=3, retry_initial_backoff_ms=10, bus="kafka", kafka_bootstrap=kafka_bootstrap,
    )  # fmt: skip
    clock, sender = Clock(), FakeSender()
    service = bootstrap(settings, bus=bus, clock=clock, sender=sender, topic_names=names)
    app = standalone_app(
        service.runtime, service.routers, TokenVerifier(Keyring.load(tmp_path / "keys"))
    )
    quiet, busy = unique("quiet"), unique("busy")

    async def publish(tenant: str, *events: CloudEvent[Any]) -> None:
        records = [
            OutgoingRecord(
                names[e.data.topic], partition_key(tenant, "o-1"), encode(_as(tenant, e))
            )
            for e in events
        ]
        await bus.publish(records)

    try:
        async with app.router.lifespan_context(app):
            history = [scan(START - timedelta(hours=3)), scan(START)]
            await publish(quiet, *customer(), order(), *history)
            opened = TicketOpened(
                ticket_id="t-1", customer_id="c-1", order_id="o-1", occurred_at=START
            )
            await publish(busy, *customer(), order(), new_event(opened, tenant_id=busy, source="t"))
            await _until(lambda: _has_stall_timer(service, quiet))
            await publish(busy, scan(START, carrier_code="DY"))
            await _until(lambda: _status(service, busy, "suppressed"))

            clock.now = START + timedelta(hours=60)  # 22:00 UTC = 23:00 in Warsaw: quiet hours
            await _until(lambda: _status(service, quiet, "deferred"))
            assert sender.sent == []
            clock.now = START.replace(day=23, hour=7, minute=1)  # 08:01 in Warsaw
            await _until(lambda: _status(service, quiet, "sent"))
            await publish(quiet, *history, *history)  # a resent history, twice
            await asyncio.sleep(2)
            rows = await _rows(service, quiet)
            assert [(r.status, r.delay_reason, r.channel, r.language) for r in rows] == [
                ("sent", "stalled", "whatsapp", "ru")
            ]
            assert len(sender.sent) == 1 and "задерживается" in sender.sent[0].text
            [suppressed] = await _rows(service, busy)
            assert (suppressed.reason, suppressed.note is not None) == ("open_case", True)
    finally:
        admin = make_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def _status(service: Any, tenant: str, status: str) -> bool:
    return any(r.status == status for r in await _rows(service, tenant))


async def _has_stall_timer(service: Any, tenant: str) -> bool:
    async with service.runtime.uow() as uow:
        t = orm.timers.c
        q = select(t.id).where(t.tenant_id == tenant, t.kind == "stall")
        return bool((await uow.session.execute(q)).first())
