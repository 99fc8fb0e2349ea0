"""Migrations create exactly the tables the ORM describes (no drift), on real PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from routing.adapters import orm
from routing.bootstrap import RoutingService


async def test_migrated_schema_matches_the_orm(pg_routing: RoutingService) -> None:
    def diff(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), orm.metadata))

    async with pg_routing.runtime.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []
