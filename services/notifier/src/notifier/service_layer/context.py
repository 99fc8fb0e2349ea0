"""What a use case gets: the unit of work, tenant, clock, repositories and ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from notifier.adapters.notifications import Notifications
from notifier.adapters.repository import Repository
from notifier.domain.episodes import Alert
from notifier.domain.policy import Policy
from notifier.domain.shipments import Shipment
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.topics import partition_key
from sbkit.db.uow import UnitOfWork


@dataclass
class Batch:
    """What a consumer batch's use cases leave for its end: the events to emit (in order) and
    the alerts to decide set at a time (`notify.settle`), each with its order as it was then."""

    outbox: list[tuple[CloudEvent[Any], str]] = field(default_factory=list)
    alerts: list[tuple[Ctx, Shipment, Alert, Policy, Any]] = field(default_factory=list)


@dataclass
class Ctx:
    """One use case's view of the world (one tenant, one transaction, one `now`)."""

    uow: UnitOfWork
    tenant: str
    now: datetime
    tracking_url: str = "https://track.example.com/{carrier}/{tracking_number}"
    correlation_id: str | None = None
    causation_id: str | None = None
    batch: Batch | None = None  # a consumer batch this use case runs in
    repo: Repository = field(init=False)
    notes: Notifications = field(init=False)

    def __post_init__(self) -> None:
        self.repo = Repository(self.uow.session, self.tenant)
        self.notes = Notifications(self.uow.session, self.tenant)

    async def emit(self, data: EventData, *, key: str) -> None:
        """Queue an event of this tenant in the outbox, keyed by tenant + `key` (in a batch: kept
        in order in its `outbox`, which it writes with one statement before it commits)."""
        event = new_event(
            data,
            tenant_id=self.tenant,
            source="notifier",
            subject=key,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
        if self.batch is None:
            await self.uow.emit(event, key=partition_key(self.tenant, key))
        else:
            self.batch.outbox.append((event, partition_key(self.tenant, key)))

    async def policy(self) -> Policy:
        """The tenant's policy (defaults where unset)."""
        return policy_from(await self.notes.policy() or {})


DURATIONS = ("cap_window", "estimate_margin", "stall_default", "stall_floor", "delivery_timeout")
TIMES = ("quiet_start", "quiet_end")


def policy_from(doc: dict[str, Any]) -> Policy:
    """A policy from its stored document (durations in seconds, times as HH:MM)."""
    values: dict[str, Any] = {}
    for name, value in doc.items():
        if value is None or name not in Policy.__dataclass_fields__:
            continue
        if name in DURATIONS:
            value = timedelta(seconds=value)
        elif name in TIMES:
            value = time.fromisoformat(value)
        elif name == "fallback_order":
            value = tuple(value)
        values[name] = value
    return Policy(**values)
