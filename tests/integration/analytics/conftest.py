"""analytics on real PostgreSQL (a fresh schema) and real Kafka (consuming topics of its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from analytics.bootstrap import AnalyticsService, bootstrap
from analytics.config import AnalyticsSettings
from analytics.entrypoints.consumers import TOPICS
from sbcontracts.topics import ALL_TOPICS
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.local import LocalBus
from sbkit.db.engine import make_engine
from tests.conftest import fresh_schema, unique
from tests.fakes.served import served
from tests.unit.analytics.conftest import Api


@dataclass
class Stack:
    """A running analytics app, its API client, its bus and the topic names it consumes."""

    api: Api
    service: AnalyticsService
    bus: KafkaBus
    topics: dict[str, str]


def _settings(pg_url: str, kafka: str, tmp_path: Path, schema: str) -> AnalyticsSettings:
    return AnalyticsSettings(
        service=unique("analytics"),  # consumer groups of its own
        bus="kafka",
        kafka_bootstrap=kafka,
        database_url=pg_url,
        db_schema=schema,
        auth_key_dir=str(tmp_path / "keys"),
        outbox_poll_ms=20,
        retry_attempts=3,
        retry_initial_backoff_ms=10,
        live_refresh_ms=200,
    )


@pytest.fixture
async def stack(pg_url: str, kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """analytics migrated into a fresh schema, consuming unique copies of its input topics."""
    schema = "analytics_" + unique("t").replace("-", "_")
    topics = {t: unique(t) for t in TOPICS}
    specs = [TopicSpec(t.name, 3, t.retention_ms) for t in ALL_TOPICS]
    specs += [TopicSpec(name, 3, 3_600_000) for name in topics.values()]
    bus = KafkaBus(kafka_bootstrap, topics=specs, linger_ms=1)
    service = bootstrap(
        _settings(pg_url, kafka_bootstrap, tmp_path, schema), bus=bus, topic_names=topics
    )
    try:
        async with served(service, tmp_path / "keys", "http://analytics") as (client, ring):
            yield Stack(Api(client, ring, service), service, bus, topics)
    finally:
        admin = make_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
async def pg_api(pg_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The analytics app on a fresh PostgreSQL schema (no broker needed: a local bus)."""
    async with fresh_schema(pg_url) as (_, schema):
        settings = AnalyticsSettings(
            database_url=pg_url, db_schema=schema, auth_key_dir=str(tmp_path / "keys")
        )
        service = bootstrap(settings, bus=LocalBus(":memory:", poll_interval_s=0.01))
        async with served(service, tmp_path / "keys", "http://a") as (client, ring):
            yield Api(client, ring, service)
