"""What every use case works with: the unit of work, the tenant's repository, event metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from crm.adapters.repository import CustomerRepository
from crm.domain.handles import HandleKey
from sbcontracts.envelope import EventData, new_event
from sbcontracts.events.common import Handle, HandleKind
from sbcontracts.events.crm import Provenance, ProvenanceKind
from sbcontracts.topics import partition_key
from sbkit.db.uow import UnitOfWork


@dataclass
class Ctx:
    """One use case's transaction, tenant and causation."""

    uow: UnitOfWork
    tenant: str
    correlation_id: str | None = None
    causation_id: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    tombstone_secret: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.repo = CustomerRepository(
            self.uow.session, self.tenant, tombstone_secret=self.tombstone_secret
        )

    async def emit(self, data: EventData, customer_id: str) -> None:
        """Queue an event about a customer, keyed so it stays in order per customer."""
        event = new_event(
            data,
            tenant_id=self.tenant,
            source="crm",
            subject=customer_id,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )
        await self.uow.emit(event, key=partition_key(self.tenant, customer_id))


def to_handle(h: HandleKey) -> Handle:
    """The contracts' form of a handle."""
    return Handle(kind=HandleKind(h.kind), value=h.value, scope=h.scope or None)


def provenance(kind: ProvenanceKind, ref: str, handle: HandleKey | None = None) -> Provenance:
    """Which message/order/agent caused a change."""
    return Provenance(kind=kind, ref=ref, handle=to_handle(handle) if handle else None)
