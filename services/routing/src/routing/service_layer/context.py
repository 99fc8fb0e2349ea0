"""What every use case works with: the unit of work, the tenant's repository, event metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from routing.adapters import writes
from routing.adapters.repository import RoutingRepository
from routing.service_layer.snapshot import ConfigCache
from sbcontracts.envelope import CloudEvent, EventData, new_event
from sbcontracts.events.routing import TicketData
from sbcontracts.topics import partition_key
from sbkit.db.uow import UnitOfWork


@dataclass(frozen=True)
class Knobs:
    """Service settings the use cases need."""

    reopen_window: timedelta = timedelta(days=3)
    offline_grace: timedelta = timedelta(minutes=2)
    cache: ConfigCache = field(default_factory=ConfigCache, compare=False, repr=False)


_PENDING = "routing.pending_events"  # in the session's info while events are buffered


@asynccontextmanager
async def batched(uow: UnitOfWork) -> AsyncIterator[None]:
    """Collect the events emitted inside and the new tickets, messages and timers, written (in
    order; on PostgreSQL as one statement) when the block completes; a read of those tables
    inside writes the waiting rows first. On an error nothing is written and the
    transaction is rolled back anyway."""
    if _PENDING in uow.session.info:  # already buffering: the outer block writes them
        yield
        return
    pending: list[tuple[CloudEvent[Any], str]] = []
    uow.session.info[_PENDING] = pending
    rows = writes.start(uow.session)
    try:
        yield
    finally:
        del uow.session.info[_PENDING]
        writes.stop(uow.session)
    if rows is not None:  # the rows and the events in one statement
        await rows.write(uow.session, outbox=uow.outbox_rows(pending))
    else:
        await uow.emit_many(pending)


@dataclass
class Ctx:
    """One use case's transaction, tenant and causation."""

    uow: UnitOfWork
    tenant: str
    correlation_id: str | None = None
    causation_id: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    knobs: Knobs = field(default_factory=Knobs)

    def __post_init__(self) -> None:
        self.repo = RoutingRepository(self.uow.session, self.tenant)

    async def emit(self, data: EventData, *, key_id: str) -> None:
        """Queue an event keyed by tenant + `key_id` (ticket id, or customer id for outbound)."""
        event = new_event(
            data,
            tenant_id=self.tenant,
            source="routing",
            subject=key_id,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
        pending: list[tuple[CloudEvent[Any], str]] | None = self.uow.session.info.get(_PENDING)
        key = partition_key(self.tenant, key_id)
        if pending is None:
            await self.uow.emit(event, key=key)
        else:
            pending.append((event, key))

    async def ticket_event(self, model: type[TicketData], ticket: Any, **extra: Any) -> None:
        """Emit a ticket event carrying the ticket's common fields (current row + overrides)."""
        base: dict[str, Any] = {
            "ticket_id": ticket.id,
            "customer_id": ticket.customer_id,
            "cycle": ticket.cycle,
            "queue": ticket.queue_id,
            "channel": ticket.channel if ticket.channel != "unknown" else None,
            "agent_id": ticket.agent_id,
            "occurred_at": self.now,
        }
        await self.emit(model(**(base | extra)), key_id=ticket.id)
