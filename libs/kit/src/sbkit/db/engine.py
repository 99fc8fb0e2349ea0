"""Async engines: PostgreSQL (asyncpg, one schema per service) or SQLite (aiosqlite, one file each)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util import await_


def make_engine(
    url: str,
    *,
    schema: str | None = None,
    pool_size: int = 10,
    server_settings: Mapping[str, str] | None = None,
) -> AsyncEngine:
    """An engine whose connections see only the service's own schema. PostgreSQL:
    `server_settings` are further settings of every connection, sent when it opens (asyncpg's
    startup parameters: no statement, and the pool's rollbacks keep them); SQLite ignores them."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        pool: dict[str, Any] = {}  # in memory: SQLAlchemy's StaticPool, one connection anyway
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            # One connection, handed out in FIFO order by the pool: SQLite has one writer at a
            # time, and its own busy handler polls with growing sleeps and lets newcomers
            # overtake a waiting writer. Behind a flood of another tenant's writes a quiet
            # request waited up to 13 s that way; in the pool's queue it waits only for the
            # transactions ahead of it.
            pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 60}
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        event.listen(engine.sync_engine, "invalidate", _sqlite_roll_back_before_close)
        return engine
    settings = dict(server_settings or {})
    if schema:
        settings["search_path"] = schema
    connect_args: dict[str, Any] = {"server_settings": settings} if settings else {}
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, connect_args=connect_args
    )
    event.listen(engine.sync_engine, "checkout", _ping)
    return engine


def _ping(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Check a pooled connection before use, in one round trip. SQLAlchemy's `pool_pre_ping`
    on asyncpg wraps its ping in BEGIN ... ROLLBACK (for pgbouncer's transaction mode, which we
    do not use): three round trips before every unit of work, twice the cost of a one-query
    card read. A dead connection (a database restart) is replaced: the pool retries the checkout
    with a new one when this raises DisconnectionError."""
    try:
        await_(dbapi_conn.driver_connection.fetchrow(";"))
    except Exception as exc:
        raise DisconnectionError(f"pooled connection failed its ping: {exc!r}") from exc


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives kill -9
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock when the transaction starts: a deferred transaction that reads and
    # then writes fails at once with "database is locked" when another writer got in between;
    # BEGIN IMMEDIATE waits for the lock (busy_timeout) instead; within the process the pool
    # already serialises, so it waits only for another process (the CLI, a migration).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_roll_back_before_close(dbapi_conn: Any, _record: Any, _exc: Any) -> None:
    """A unit of work cancelled inside a query (a client gone, a timeout, a stop) has its
    connection invalidated and closed. Python's sqlite3 closes with `sqlite3_close_v2`, which
    keeps a connection whose statement is still open (the cancelled query's cursor, alive in the
    traceback) as a zombie that holds its transaction, and so the database's write lock, until
    that cursor is freed: every later transaction, in this process or another, then waited out
    the 30 s busy timeout and failed with "database is locked". Rolled back first, the lock is
    released whatever becomes of the cursor; aiosqlite runs the rollback after the query."""
    try:
        dbapi_conn.rollback()
    except Exception:  # noqa: BLE001 - the connection is being thrown away; close() follows
        return


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (no lazy reloads)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine: AsyncEngine) -> bool:
    """Whether the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"
