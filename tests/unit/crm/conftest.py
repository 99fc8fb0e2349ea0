"""crm fixtures: the service on SQLite in a temp folder and an in-memory local bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from crm.adapters import orm
from crm.bootstrap import CrmService, bootstrap
from crm.config import CrmSettings
from sbcontracts.catalog import decode, encode
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.ingest import MessageReceived, OrderPlaced
from sbcontracts.topics import partition_key
from sbkit.auth import Keyring, mint
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord
from tests.fakes.served import served

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TENANT = "acme"


def settings_for(tmp_path: Path, **extra: Any) -> CrmSettings:
    """Settings of a crm on SQLite in tmp_path with fast retries."""
    return CrmSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/crm.db",
        auth_key_dir=str(tmp_path / "keys"),
        retry_attempts=2,
        retry_initial_backoff_ms=1,
        outbox_poll_ms=20,
        **extra,
    )


@pytest.fixture
async def crm(tmp_path: Path) -> AsyncIterator[CrmService]:
    """A migrated crm service on SQLite with a local bus (not started)."""
    bus = LocalBus(":memory:", poll_interval_s=0.01)
    service = bootstrap(settings_for(tmp_path), bus=bus)
    await service.runtime.migrate()
    yield service
    await service.runtime.stop()


def message(
    sender: str,
    *,
    kind: HandleKind = HandleKind.EMAIL,
    channel: Channel = Channel.EMAIL,
    minutes: int = 0,
    name: str | None = None,
    tenant: str = TENANT,
) -> CloudEvent[Any]:
    """A message.received event from a sender."""
    at = T0 + timedelta(minutes=minutes)
    data = MessageReceived(
        message_id=f"m-{sender}-{minutes}",
        channel=channel,
        provider="test",
        provider_message_id=f"p-{sender}-{minutes}",
        received_at=at,
        sender=Handle(kind=kind, value=sender),
        display_name=name,
        text=f"hello from {sender}",
        body=f"hello from {sender}",
    )
    return new_event(data, tenant_id=tenant, source="ingest", time=at)


def order(
    order_id: str, *, email: str | None, phone: str | None, name: str | None = None
) -> CloudEvent[Any]:
    """An order.placed event naming an email and a phone."""
    data = OrderPlaced(
        order_id=order_id,
        customer_email=email,
        customer_phone=phone,
        customer_name=name,
        placed_at=T0 + timedelta(hours=1),
    )
    return new_event(data, tenant_id=TENANT, source="ingest")


def record(event: CloudEvent[Any], key: str = "k") -> OutgoingRecord:
    """The bus record of an event."""
    data: EventData = event.data
    return OutgoingRecord(data.topic, partition_key(event.tenantid, key), encode(event))


async def deliver(service: CrmService, event: CloudEvent[Any] | bytes, topic: str = "") -> None:
    """Run a record through the consumer the runtime registered for its topic."""
    from sbkit.bus.ports import Record

    raw = event if isinstance(event, bytes) else encode(event)
    topic = topic or (event.data.topic if not isinstance(event, bytes) else "")
    for sub in service.runtime._subscriptions:
        if topic in sub.topics:
            await sub.handler(Record(topic, 0, 0, None, raw))


async def count(service: CrmService, table: Any, **where: Any) -> int:
    """Rows of a crm table matching column values."""
    async with service.runtime.uow() as uow:
        q = select(func.count()).select_from(table)
        for col, value in where.items():
            q = q.where(table.c[col] == value)
        return int((await uow.session.execute(q)).scalar_one())


async def live_customers(service: CrmService) -> int:
    """Active customers."""
    return await count(service, orm.customers, status="active")


async def outbox_events(service: CrmService) -> list[CloudEvent[Any]]:
    """Events waiting in the outbox, in order."""
    async with service.runtime.uow() as uow:
        rows = await uow.session.execute(
            select(orm.kit.outbox.c.value).order_by(orm.kit.outbox.c.id)
        )
        return [decode(v) for v in rows.scalars()]


async def eventually(check: Callable[[], Any], limit_s: float = 10.0) -> None:
    """Wait until an async check returns truthy."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


class Api:
    """An HTTP client of one crm app with a token per tenant."""

    def __init__(self, client: httpx.AsyncClient, ring: Keyring, service: CrmService) -> None:
        self.client, self.ring, self.service = client, ring, service

    def auth(
        self, tenant: str = "acme", scopes: tuple[str, ...] = ("customers:*",)
    ) -> dict[str, str]:
        """Headers with a bearer token for a tenant."""
        _, token = mint(self.ring, tenant_id=tenant, scopes=list(scopes), ttl_s=600)
        return {"authorization": f"Bearer {token}"}

    async def call(
        self, method: str, url: str, *, tenant: str = "acme", **kw: Any
    ) -> httpx.Response:
        """A request as the tenant's agent."""
        return await self.client.request(method, url, headers=self.auth(tenant), **kw)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The crm app on SQLite with a local bus, served in-process."""
    settings = settings_for(tmp_path)
    service = bootstrap(settings, bus=LocalBus(":memory:", poll_interval_s=0.01))
    async with served(service, tmp_path / "keys", "http://crm") as (client, ring):
        yield Api(client, ring, service)
