"""Migrations create exactly the tables the ORM describes (no drift), on real PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from notifier.adapters import orm
from notifier.bootstrap import bootstrap
from notifier.config import NotifierSettings
from sbkit.bus.local import LocalBus
from sbkit.db.engine import make_engine
from tests.conftest import unique


async def test_migrated_schema_matches_the_orm(pg_url: str, tmp_path: Path) -> None:
    schema = "notifier_" + unique("m").replace("-", "_")
    settings = NotifierSettings(
        database_url=pg_url, db_schema=schema, auth_key_dir=str(tmp_path / "keys")
    )
    service = bootstrap(settings, bus=LocalBus(":memory:"), timers=False)

    def diff(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), orm.metadata))

    try:
        await service.runtime.migrate()
        async with service.runtime.engine.connect() as conn:
            changes = await conn.run_sync(diff)
        assert changes == []
    finally:
        await service.runtime.stop()
        admin = make_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()
