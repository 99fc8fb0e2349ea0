"""A service's runtime: engine, unit of work, idempotent consumers, outbox relay, readiness."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog
from fastapi import APIRouter
from pydantic import ValidationError
from sqlalchemy import MetaData, text

from sbkit.bus.ports import Bus, PoisonMessage, RetryPolicy, Subscription
from sbkit.consumer import BatchEventHandler, EventHandler, batch_handler, record_handler
from sbkit.db.engine import make_engine, make_sessionmaker
from sbkit.db.migrate import upgrade
from sbkit.db.outage import outage_guard
from sbkit.db.relay import OutboxRelay
from sbkit.db.tables import KitTables
from sbkit.db.uow import OpenUnits, UnitOfWork
from sbkit.settings import KitSettings

log = structlog.get_logger(__name__)

__all__ = ["BatchEventHandler", "BuiltService", "EventHandler", "ServiceRuntime"]


class BuiltService(Protocol):
    """What a service's bootstrap returns: its runtime and its HTTP routers."""

    runtime: ServiceRuntime
    routers: list[APIRouter]


class ServiceRuntime:
    """Everything outside the domain that one service needs while it runs."""

    def __init__(
        self,
        settings: KitSettings,
        *,
        metadata: MetaData,
        tables: KitTables,
        migrations: Path,
        bus: Bus,
        server_settings: Mapping[str, str] | None = None,  # PostgreSQL: see `make_engine`
    ) -> None:
        self.settings = settings
        self.name = settings.service
        self.metadata = metadata
        self.tables = tables
        self.migrations = migrations
        self.bus = bus
        self.engine = make_engine(
            settings.db_url(),
            schema=settings.schema_name(),
            pool_size=settings.db_pool_size,
            server_settings=server_settings,
        )
        self.sessionmaker = make_sessionmaker(self.engine)
        self.relay = OutboxRelay(
            self.sessionmaker,
            tables,
            bus,
            service=self.name,
            poll_interval_s=settings.outbox_poll_ms / 1000,
        )
        self.retry = RetryPolicy(
            attempts=settings.retry_attempts,
            initial_backoff_s=settings.retry_initial_backoff_ms / 1000,
            max_backoff_s=settings.retry_max_backoff_ms / 1000,
        )
        self._subscriptions: list[Subscription] = []
        self._background: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._open_units = OpenUnits()

    def uow(self) -> UnitOfWork:
        """A new unit of work; committing it wakes the outbox relay."""
        return UnitOfWork(
            self.sessionmaker, self.tables, on_commit=self.relay.notify, open_units=self._open_units
        )

    def consume(
        self,
        consumer: str,
        topics: Sequence[str],
        handle: EventHandler,
        *,
        batch: bool = True,
        handle_batch: BatchEventHandler | None = None,
    ) -> None:
        """Register an idempotent consumer: decode, skip seen ids, apply and commit, then ack.

        By default each partition's polled records are applied in one transaction (up to
        `consumer_batch_max`), falling back to one transaction per record when that fails;
        `batch=False` keeps one transaction per record always. `handle_batch` (optional) gets
        a batch's new events at once, to do set-at-a-time work; it must have the same effect
        as `handle` on each event in order, which stays the per-record fallback.
        """
        uows = self.uow
        self._subscriptions.append(
            Subscription(
                group=f"{self.name}.{consumer}",
                topics=tuple(topics),
                handler=outage_guard(
                    record_handler(uows, consumer=consumer, handle=handle),
                    ready=self.db_ready,
                    poison=(PoisonMessage, ValidationError),
                    consumer=consumer,
                ),
                retry=self.retry,
                poison_types=(PoisonMessage, ValidationError),
                batch_handler=(
                    batch_handler(uows, consumer=consumer, handle=handle, handle_batch=handle_batch)
                    if batch
                    else None
                ),
                max_batch=self.settings.consumer_batch_max,
            )
        )

    def add_background(self, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `factory()` as a task from start() until stop() (timers, pollers); stop() cancels
        it where it waits outside its units of work (one in progress finishes first)."""
        self._background.append(factory)

    async def migrate(self) -> None:
        """Apply this service's migrations."""
        await upgrade(
            self.engine, script_location=self.migrations, schema=self.settings.schema_name()
        )

    async def start(self) -> None:
        """Migrate (if configured), start the relay, hand consumers to the bus."""
        if self.settings.migrate_on_start:
            await self.migrate()
        self.relay.start()
        for sub in self._subscriptions:
            self.bus.subscribe(sub)
        self._tasks = [asyncio.create_task(factory()) for factory in self._background]

    async def stop(self) -> None:
        """Flush the outbox and close connections (the bus has stopped consuming, still publishes)."""
        for task in self._tasks:
            await self._open_units.cancel_outside(task)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.relay.stop()
        await self.engine.dispose()

    async def db_ready(self) -> bool:
        """Whether the database answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - unreachable is an answer
            return False
        return True
