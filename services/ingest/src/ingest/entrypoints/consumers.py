"""Kafka entrypoints: adapter records on `sb.inbound.v1` get the same normalisation and dedupe as
HTTP; `customer.erased` on `sb.customers.v1` scrubs the person's stored messages."""

from __future__ import annotations

from typing import Any

from ingest.domain.errors import ParseError
from ingest.domain.providers.adapter import from_adapter
from ingest.entrypoints.deps import IngestDeps
from ingest.service_layer.erasure import on_customer_erased
from ingest.service_layer.messages import Context, record_message
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.crm import CustomerErased
from sbcontracts.events.ingest import InboundAdapterMessage
from sbcontracts.topics import CUSTOMERS, INBOUND
from sbkit.bus.ports import PoisonMessage
from sbkit.db.uow import UnitOfWork


def register_consumers(deps: IngestDeps) -> None:
    """Subscribe ingest's consumers (inbox de-dupes event ids, natural keys the rest)."""

    async def on_inbound(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        data = event.data
        if not isinstance(data, InboundAdapterMessage):
            raise PoisonMessage(f"unexpected event type {event.type} on {INBOUND.name}")
        base = deps.context(event.tenantid, region=data.region)
        ctx = Context(
            event.tenantid,
            base.region,
            base.languages,
            correlation_id=event.correlationid,
            causation_id=event.id,
        )
        try:
            await record_message(uow, ctx, from_adapter(data))
        except ParseError as exc:  # e.g. a sender that is no email/phone: never applicable
            raise PoisonMessage(str(exc)) from exc

    async def on_customers(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
        if isinstance(event.data, CustomerErased):  # other customer.* events are crm's business
            await on_customer_erased(uow, event.tenantid, event.data)

    deps.runtime.consume("inbound", [INBOUND.name], on_inbound)
    deps.runtime.consume("customers", [CUSTOMERS.name], on_customers)
