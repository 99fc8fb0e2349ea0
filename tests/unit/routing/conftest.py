"""routing fixtures: the service on SQLite in a temp folder, a local bus, event builders, helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from routing.adapters import orm
from routing.bootstrap import RoutingService, bootstrap
from routing.config import RoutingSettings
from routing.service_layer.context import Ctx
from sbcontracts.catalog import decode, encode
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.crm import MessageAttributed
from sbcontracts.events.ingest import MessageReceived, ThreadRefs
from sbcontracts.topics import AGENTS, OUTBOUND, TICKETS
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Record

TENANT = "acme"
T = TypeVar("T")


def settings_for(tmp_path: Path, **extra: Any) -> RoutingSettings:
    """Settings of a routing service on SQLite in tmp_path with fast retries."""
    return RoutingSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/routing.db",
        auth_key_dir=str(tmp_path / "keys"),
        retry_attempts=2,
        retry_initial_backoff_ms=1,
        outbox_poll_ms=20,
        **extra,
    )


@pytest.fixture
async def routing(tmp_path: Path) -> AsyncIterator[RoutingService]:
    """A migrated routing service on SQLite with a local bus (not started, timers not polled)."""
    service = bootstrap(
        settings_for(tmp_path), bus=LocalBus(":memory:", poll_interval_s=0.01), timers=False
    )
    await service.runtime.migrate()
    yield service
    await service.runtime.stop()


def attributed(
    text: str,
    *,
    customer: str = "c1",
    channel: Channel = Channel.EMAIL,
    sender: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    at: datetime | None = None,
    tenant: str = TENANT,
    language: str | None = None,
) -> CloudEvent[Any]:
    """A message.attributed event of a customer message."""
    kind = HandleKind.EMAIL if channel == Channel.EMAIL else HandleKind.PHONE
    handle = Handle(
        kind=kind,
        value=sender or (f"{customer}@x.pl" if kind == HandleKind.EMAIL else "+48600100200"),
    )
    mid = uuid.uuid4().hex[:12]
    msg = MessageReceived(
        message_id=f"m-{mid}",
        channel=channel,
        provider="test",
        provider_message_id=f"p-{mid}",
        received_at=at or datetime.now(UTC),
        sender=handle,
        thread=ThreadRefs(
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=(in_reply_to,) if in_reply_to else (),
        ),
        subject=None,
        text=text,
        body=text,
        language=language,
    )
    data = MessageAttributed(message=msg, customer_id=customer)
    return new_event(data, tenant_id=tenant, source="crm")


def event_of(data: EventData, tenant: str = TENANT) -> CloudEvent[Any]:
    """Wrap a payload."""
    return new_event(data, tenant_id=tenant, source="test")


async def deliver(service: RoutingService, event: CloudEvent[Any] | bytes, topic: str = "") -> None:
    """Run a record through the consumer the runtime registered for its topic."""
    raw = event if isinstance(event, bytes) else encode(event)
    topic = topic or (event.data.topic if not isinstance(event, bytes) else "")
    subs = [s for s in service.runtime._subscriptions if topic in s.topics]
    assert subs, f"no consumer of {topic}"
    for sub in subs:
        await sub.handler(Record(topic, 0, 0, None, raw))


async def in_ctx(
    service: RoutingService,
    use: Callable[[Ctx], Awaitable[T]],
    *,
    now: datetime | None = None,
    tenant: str = TENANT,
) -> T:
    """Run a use case in one committed unit of work at a chosen time."""
    async with service.runtime.uow() as uow:
        ctx = Ctx(uow, tenant, now=now or datetime.now(UTC), knobs=service.knobs)
        result = await use(ctx)
        await uow.commit()
        return result


async def outbox(service: RoutingService, type_suffix: str = "") -> list[CloudEvent[Any]]:
    """Events emitted so far, in order: still in the outbox or already relayed to the bus."""
    async with service.runtime.uow() as uow:
        rows = await uow.session.execute(
            select(orm.kit.outbox.c.value).order_by(orm.kit.outbox.c.id)
        )
        pending = [decode(v) for v in rows.scalars()]
    relayed = [
        decode(r.value)
        for topic in (TICKETS.name, OUTBOUND.name, AGENTS.name)
        for r in await service.runtime.bus.read_topic(topic)
    ]  # read after the outbox: an event moving between them is seen at least once
    seen: dict[str, CloudEvent[Any]] = {}
    for event in sorted(relayed, key=lambda e: e.time) + pending:
        seen.setdefault(event.id, event)
    return [e for e in seen.values() if e.type.endswith(type_suffix)]


async def tickets(service: RoutingService) -> list[Any]:
    """Every ticket row."""
    async with service.runtime.uow() as uow:
        return list(
            (
                await uow.session.execute(select(orm.tickets).order_by(orm.tickets.c.created_at))
            ).all()
        )


async def add_queue(
    service: RoutingService, queue_id: str, *, tenant: str = TENANT, **config: Any
) -> None:
    """Insert a queue directly."""
    position = config.pop("position", 10)
    policy = config.pop("policy", "longest_idle")
    await in_ctx(
        service,
        lambda c: c.repo.put_queue(
            queue_id,
            {"name": queue_id, "position": position, "policy": policy, "config": config},
            exists=False,
        ),
        tenant=tenant,
    )


async def add_agent(
    service: RoutingService,
    agent_id: str,
    *,
    online: bool = True,
    tenant: str = TENANT,
    **values: Any,
) -> None:
    """Insert an agent directly (online by default)."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    row = {
        "name": agent_id,
        "presence": "online" if online else "offline",
        "capacity": 100,
        "load": 0,
        "skills": {},
        "languages": {"pl": 5, "en": 4},
        "queues": [],
        "idle_since": now,
        "presence_at": now,
    } | values
    row["queue_keys"] = "|" + "|".join(row["queues"]) + "|" if row["queues"] else ""
    await in_ctx(service, lambda c: c.repo.put_agent(agent_id, row, exists=False), tenant=tenant)
