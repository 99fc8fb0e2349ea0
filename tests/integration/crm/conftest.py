"""crm on real PostgreSQL (a fresh schema) and real Kafka (consuming topics of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from crm.bootstrap import CrmService, bootstrap
from crm.config import CrmSettings
from sbcontracts.topics import ALL_TOPICS, COMMERCE, MESSAGES, SURVEYS
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.db.engine import make_engine
from tests.conftest import unique
from tests.fakes.served import served
from tests.unit.crm.conftest import Api


@dataclass
class Stack:
    """A running crm app, its API client and the topic names it consumes."""

    api: Api
    service: CrmService
    bus: KafkaBus
    topics: dict[str, str]


def _settings(pg_url: str, kafka: str, tmp_path: Path, schema: str) -> CrmSettings:
    return CrmSettings(
        service=unique("crm"),  # consumer groups of its own
        bus="kafka",
        kafka_bootstrap=kafka,
        database_url=pg_url,
        db_schema=schema,
        auth_key_dir=str(tmp_path / "keys"),
        outbox_poll_ms=20,
        retry_attempts=3,
        retry_initial_backoff_ms=10,
    )


@pytest.fixture
async def stack(pg_url: str, kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """crm migrated into a fresh schema, consuming unique topics on the real broker."""
    schema = "crm_" + unique("t").replace("-", "_")
    topics = {t: unique(t) for t in (MESSAGES.name, COMMERCE.name, SURVEYS.name)}
    specs = [TopicSpec(t.name, 3, t.retention_ms) for t in ALL_TOPICS]
    specs += [TopicSpec(name, 3, 3_600_000) for name in topics.values()]
    bus = KafkaBus(kafka_bootstrap, topics=specs, linger_ms=1)
    service = bootstrap(
        _settings(pg_url, kafka_bootstrap, tmp_path, schema), bus=bus, topic_names=topics
    )
    try:
        async with served(service, tmp_path / "keys", "http://crm") as (client, ring):
            yield Stack(Api(client, ring, service), service, bus, topics)
    finally:
        admin = make_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()
