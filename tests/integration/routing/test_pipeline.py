"""On real Kafka and PostgreSQL: a Polish late-parcel message becomes a case for a Polish agent."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import Row, select

from routing.adapters import orm
from routing.bootstrap import RoutingService, bootstrap
from sbcontracts.catalog import decode, encode
from sbcontracts.topics import ALL_TOPICS, MESSAGES_ATTRIBUTED, TICKETS, partition_key
from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.ports import OutgoingRecord
from sbkit.web import standalone_app
from tests.conftest import drop_schema, unique
from tests.integration.routing.conftest import pg_settings
from tests.unit.routing.conftest import add_agent, add_queue, attributed


async def test_polish_late_parcel_is_routed_to_a_polish_agent_with_ticket_events_once(
    pg_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tenant, schema = unique("tenant"), "routing_" + unique("t").replace("-", "_")
    topic = unique(MESSAGES_ATTRIBUTED.name)
    specs = [TopicSpec(t.name, 3, t.retention_ms) for t in ALL_TOPICS] + [
        TopicSpec(topic, 3, 3_600_000)
    ]
    bus = KafkaBus(kafka_bootstrap, topics=specs, linger_ms=1)
    settings = pg_settings(pg_url, tmp_path, schema, bus="kafka", kafka_bootstrap=kafka_bootstrap)
    service = bootstrap(settings, bus=bus, topic_names={MESSAGES_ATTRIBUTED.name: topic})
    app = standalone_app(
        service.runtime, service.routers, TokenVerifier(Keyring.load(tmp_path / "keys"))
    )
    try:
        async with app.router.lifespan_context(app):
            await add_queue(service, "general", position=99, tenant=tenant)
            await add_queue(
                service,
                "pl-delivery",
                position=1,
                filters=[{"categories": ["delivery_delay"], "languages": ["pl"]}],
                tenant=tenant,
            )
            await add_agent(service, "en-agent", languages={"en": 5}, tenant=tenant)
            await add_agent(service, "pl-agent", languages={"pl": 5}, tenant=tenant)
            event = attributed(
                "Dzień dobry, moja paczka się spóźnia, gdzie ona jest?", tenant=tenant
            )
            record = OutgoingRecord(topic, partition_key(tenant, "c1"), encode(event))
            await bus.publish([record, record])  # a redelivery too
            ticket = await _wait_assigned(service)
            assert (ticket.queue_id, ticket.agent_id, ticket.language) == (
                "pl-delivery",
                "pl-agent",
                "pl",
            )
            expected = {"opened": 1, "classified": 1, "message_added": 1, "assigned": 1}
            for _ in range(300):  # the relay publishes after commit
                if sum((await _ticket_types(bus, tenant)).values()) >= 4:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # and nothing more arrives (no duplicate from the redelivery)
            assert await _ticket_types(bus, tenant) == expected
    finally:
        await drop_schema(pg_url, schema)


async def _ticket_types(bus: KafkaBus, tenant: str) -> Counter[str]:
    """Ticket event types on sb.tickets.v1 of one tenant."""
    mine = [decode(r.value) for r in await bus.read_topic(TICKETS.name)]
    return Counter(e.type.rsplit(".", 1)[-1] for e in mine if e.tenantid == tenant)


async def _wait_assigned(service: RoutingService, limit_s: float = 60.0) -> Row[Any]:
    """Poll the tickets table until one ticket has an owner."""
    for _ in range(int(limit_s / 0.1)):
        async with service.runtime.uow() as uow:
            rows = (await uow.session.execute(select(orm.tickets))).all()
        if rows and rows[0].agent_id:
            assert len(rows) == 1
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no ticket assigned in time")
