"""Migrations create exactly the tables the ORM describes (no drift), on real PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm.adapters import orm
from tests.integration.crm.conftest import Stack


async def test_migrated_schema_matches_the_orm(stack: Stack) -> None:
    def diff(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), orm.metadata))

    async with stack.service.runtime.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []
