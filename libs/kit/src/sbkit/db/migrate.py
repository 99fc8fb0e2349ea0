"""Alembic migrations per service, run programmatically (a `migrate` step, or at start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine


def _config(script_location: Path, connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, *, script_location: Path, schema: str | None) -> None:
    """Create the schema if needed and apply every migration up to head."""
    if schema:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(_config(script_location, c), "head"))


def run_env(context: EnvironmentContext | Any, target_metadata: MetaData) -> None:
    """Body of each service's migrations/env.py: migrate on the connection we were handed."""
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def create_kit_tables(op: object) -> None:
    """Migration step creating the inbox and outbox tables (used by each service's first migration)."""
    import sqlalchemy as sa

    from sbkit.db.tables import BigId

    op.create_table(  # type: ignore[attr-defined]
        "inbox",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(  # type: ignore[attr-defined]
        "outbox",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(200), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
