"""Every service's migrations apply on SQLite and PostgreSQL (own schema), and re-apply as no-ops."""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from sbkit.db.engine import make_engine

SERVICES = ("ingest", "crm", "routing", "analytics", "notifier")


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_each_service_migrates_into_its_own_schema(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    suffix = uuid.uuid4().hex[:8]
    url = (
        f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db"
        if db == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    for name in SERVICES:
        config = importlib.import_module(f"{name}.config")
        settings_cls = next(
            v for k, v in vars(config).items() if k.endswith("Settings") and k != "KitSettings"
        )
        settings = settings_cls(
            database_url=url, db_schema=f"{name}_{suffix}" if db != "sqlite" else None
        )
        service = importlib.import_module(f"{name}.bootstrap").bootstrap(settings)
        runtime = service.runtime
        await runtime.migrate()
        await runtime.migrate()  # idempotent
        async with runtime.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        assert {"inbox", "outbox", "alembic_version"} <= tables
        assert version is not None
        await runtime.engine.dispose()
    if db == "postgres":
        admin = make_engine(request.getfixturevalue("pg_url"))
        async with admin.begin() as conn:
            for name in SERVICES:
                owned = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"
                        ),
                        {"s": f"{name}_{suffix}"},
                    )
                ).scalar()
                assert owned and owned >= 3  # the tables live in the service's own schema
                await conn.execute(text(f'DROP SCHEMA "{name}_{suffix}" CASCADE'))
        await admin.dispose()
