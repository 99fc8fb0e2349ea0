"""Shared fixtures: the real Kafka broker and PostgreSQL started by the project's own scripts.

Tests that need them fail (never skip) when they cannot be started: a missing broker is a
broken environment, not a reason to pass.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sbkit.db.engine import make_engine

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(os.environ.get("SB_TEST_DATA_DIR", ROOT / ".data" / "test"))
KAFKA_PORT = int(os.environ.get("SB_TEST_KAFKA_PORT", "19092"))
PG_PORT = int(os.environ.get("SB_TEST_PG_PORT", "15432"))


def _open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _script(name: str, action: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "local" / name), action],
        env={**os.environ, "SB_DATA_DIR": str(TEST_DATA), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        pytest.fail(f"{name} {action} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """A real Kafka broker (started by deploy/local/kafka.sh if not already up)."""
    if not _open(KAFKA_PORT):
        _script("kafka.sh", "start", {"SB_KAFKA_PORT": str(KAFKA_PORT), "SB_KAFKA_FAST": "1"})
    return f"127.0.0.1:{KAFKA_PORT}"


def kafka_control(action: str) -> None:
    """Stop, start, kill or restart the test broker."""
    _script("kafka.sh", action, {"SB_KAFKA_PORT": str(KAFKA_PORT), "SB_KAFKA_FAST": "1"})


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A real PostgreSQL database (started by deploy/local/postgres.sh if not already up)."""
    if not _open(PG_PORT):
        _script("postgres.sh", "start", {"SB_PG_PORT": str(PG_PORT)})
    return f"postgresql+asyncpg://postgres@127.0.0.1:{PG_PORT}/switchboard"


async def drop_schema(pg_url: str, schema: str) -> None:
    """Remove a test's schema (if it exists)."""
    admin = make_engine(pg_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@asynccontextmanager
async def fresh_schema(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """An engine bound to a fresh schema of its own, dropped afterwards."""
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = make_engine(pg_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(pg_url, schema=schema)
    yield engine, schema
    await engine.dispose()
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture
async def pg_schema_engine(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """An engine bound to a fresh schema of its own, dropped afterwards."""
    async with fresh_schema(pg_url) as pair:
        yield pair


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a process a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique(prefix: str) -> str:
    """A name no other test uses (topics, groups, schemas)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
