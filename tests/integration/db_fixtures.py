"""Database fixtures: the same tests on SQLite (embedded) and real PostgreSQL (stack)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sbkit.db.engine import make_engine
from tests.conftest import fresh_schema


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of either kind."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        yield eng
        await eng.dispose()
        return
    async with fresh_schema(request.getfixturevalue("pg_url")) as (eng, _):
        yield eng
