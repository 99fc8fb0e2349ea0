"""notifier fixtures: the service on SQLite with a controllable clock, a recording sender, builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from notifier.adapters import orm
from notifier.bootstrap import NotifierService, bootstrap
from notifier.config import NotifierSettings
from notifier.service_layer.ports import Accepted, Outgoing, SendFailed
from sbcontracts.catalog import decode, encode
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.common import Handle, HandleKind
from sbcontracts.events.crm import CustomerCreated, CustomerUpdated, Provenance, ProvenanceKind
from sbcontracts.events.ingest import (
    OrderPlaced,
    ShipmentEventReceived,
    ShipmentRef,
    ShipmentStatus,
)
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Record

TENANT = "acme"
START = datetime(2026, 11, 20, 10, tzinfo=UTC)  # 11:00 in Warsaw


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class FakeSender:
    """Records sends; channels in `failing` raise; only `channels` have an HTTP provider."""

    channels: tuple[str, ...] = ("email", "sms", "whatsapp")
    failing: set[str] = field(default_factory=set)
    sent: list[Outgoing] = field(default_factory=list)

    def handles(self, channel: str) -> bool:
        return channel in self.channels

    async def send(self, message: Outgoing) -> Accepted:
        if message.channel in self.failing:
            raise SendFailed("provider down")
        self.sent.append(message)
        return Accepted("fake", f"p-{len(self.sent)}")


def settings_for(tmp_path: Path) -> NotifierSettings:
    return NotifierSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/notifier.db",
        auth_key_dir=str(tmp_path / "keys"),
        retry_attempts=2,
        retry_initial_backoff_ms=1,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
async def notifier(
    tmp_path: Path, clock: Clock, sender: FakeSender
) -> AsyncIterator[NotifierService]:
    """A migrated notifier on SQLite with a local bus (timers ticked by hand)."""
    service = bootstrap(
        settings_for(tmp_path),
        bus=LocalBus(":memory:", poll_interval_s=0.01),
        clock=clock,
        sender=sender,
        timers=False,
    )
    await service.runtime.migrate()
    yield service
    await service.runtime.stop()


def event_of(data: EventData, tenant: str = TENANT) -> CloudEvent[Any]:
    return new_event(data, tenant_id=tenant, source="test")


async def deliver(
    service: NotifierService, event: CloudEvent[Any] | bytes, topic: str = ""
) -> None:
    """Run a record through the consumer registered for its topic."""
    raw = event if isinstance(event, bytes) else encode(event)
    topic = topic or (event.data.topic if not isinstance(event, bytes) else "")
    subs = [s for s in service.runtime._subscriptions if topic in s.topics]
    assert subs, f"no consumer of {topic}"
    for sub in subs:
        await sub.handler(Record(topic, 0, 0, None, raw))


async def outbox(service: NotifierService, suffix: str = "") -> list[CloudEvent[Any]]:
    async with service.runtime.uow() as uow:
        rows = await uow.session.execute(
            select(orm.kit.outbox.c.value).order_by(orm.kit.outbox.c.id)
        )
        events = [decode(v) for v in rows.scalars()]
    return [e for e in events if e.type.endswith(suffix)]


async def notifications(service: NotifierService) -> list[Any]:
    async with service.runtime.uow() as uow:
        q = select(orm.notifications).order_by(orm.notifications.c.created_at)
        return list((await uow.session.execute(q)).all())


def order(
    *,
    dispatch_by: datetime | None = None,
    promised: date | None = date(2026, 11, 23),
    n: int = 1,
    **kw: Any,
) -> CloudEvent[Any]:
    """Order `o-<n>` of customer c-1 with shipment `s-<n>`."""
    ref = ShipmentRef(
        shipment_id=f"s-{n}", carrier="dhl", tracking_number=f"JD{n}", dispatch_by=dispatch_by
    )
    data = OrderPlaced(
        order_id=f"o-{n}",
        customer_email="anna@x.pl",
        customer_phone="+48600100200",
        customer_language=kw.pop("language", "pl"),
        customer_timezone="Europe/Warsaw",
        placed_at=START - timedelta(days=1),
        promised_to=promised,
        shipments=(ref,),
    )
    return event_of(data)


def scan(at: datetime, status: str = "in_transit", *, n: int = 1, **kw: Any) -> CloudEvent[Any]:
    """A carrier scan of shipment `s-<n>`."""
    data = ShipmentEventReceived(
        shipment_id=f"s-{n}",
        order_id=f"o-{n}",
        carrier="dhl",
        tracking_number=f"JD{n}",
        status=ShipmentStatus(status),
        occurred_at=at,
        **kw,
    )
    return event_of(data)


def customer(preferred: str = "whatsapp") -> list[CloudEvent[Any]]:
    handles = (
        Handle(kind=HandleKind.EMAIL, value="anna@x.pl"),
        Handle(kind=HandleKind.PHONE, value="+48600100200"),
    )
    prov = Provenance(kind=ProvenanceKind.ORDER, ref="o-1")
    created = CustomerCreated(customer_id="c-1", handles=handles, provenance=prov, created_at=START)
    updated = CustomerUpdated(
        customer_id="c-1",
        fields=("language", "timezone", "preferred_channel"),
        language="ru",
        timezone="Europe/Warsaw",
        preferred_channel=preferred,
        updated_at=START,
    )
    return [event_of(created), event_of(updated)]


async def state(n: NotifierService) -> dict[str, Any]:
    """Every row a commerce event can change (random ids and wall-clock fields left out), and
    the events in the outbox (notification ids left out), to compare two ways of applying."""
    tables = {
        "shipments": (orm.shipments, ()),
        "orders": (orm.orders, ()),
        "timers": (orm.timers, ("id",)),
        "gaps": (orm.gap_samples, ("id",)),
        "notes": (orm.notifications, ("id", "history", "created_at", "updated_at")),
        "episodes": (orm.episodes, ()),
    }
    out: dict[str, Any] = {}
    async with n.runtime.uow() as uow:
        for name, (table, skip) in tables.items():
            rows = (await uow.session.execute(select(table))).mappings().all()
            out[name] = sorted(str({k: _same(k, v, r) for k, v in r.items() if k not in skip})
                               for r in rows)  # fmt: skip
    out["events"] = sorted(
        str((e.tenantid, e.type, e.subject, e.data.model_dump(exclude={"notification_id"})))
        for e in await outbox(n)
    )
    return out


def _same(column: str, value: Any, row: Any) -> Any:
    """Notification ids are random: a send timer is compared by its kind and time only."""
    return "<notification>" if column == "ref" and row.get("kind") in ("send", "receipt") else value
