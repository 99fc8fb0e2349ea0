"""Daily rollups on real PostgreSQL: whole-day reads equal the 15-minute reads, the backfill too."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from analytics.bootstrap import bootstrap
from analytics.config import AnalyticsSettings
from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.local import LocalBus
from sbkit.web import standalone_app
from tests.conftest import fresh_schema
from tests.unit.analytics.conftest import Api
from tests.unit.analytics.rollups_check import assert_rollups_match


@pytest.fixture
async def pg_api(pg_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The analytics app on a fresh PostgreSQL schema (no broker needed: a local bus)."""
    async with fresh_schema(pg_url) as (_, schema):
        settings = AnalyticsSettings(
            database_url=pg_url, db_schema=schema, auth_key_dir=str(tmp_path / "keys")
        )
        service = bootstrap(settings, bus=LocalBus(":memory:", poll_interval_s=0.01))
        ring = Keyring.load(tmp_path / "keys")
        app = standalone_app(service.runtime, service.routers, TokenVerifier(ring))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app)
            async with httpx.AsyncClient(transport=transport, base_url="http://a") as client:
                yield Api(client, ring, service)


@pytest.mark.parametrize("seed", [3, 4])
async def test_rollup_reads_equal_fifteen_minute_reads_on_postgresql(
    pg_api: Api, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    await assert_rollups_match(pg_api, monkeypatch, random.Random(seed))
