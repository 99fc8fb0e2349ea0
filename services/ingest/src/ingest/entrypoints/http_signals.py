"""Calls, orders, shipment tracking and surveys over REST, each accepted once by its natural id."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ingest.domain.errors import InvalidHandle
from ingest.domain.handles import canonical_email, e164, normalise_handle
from ingest.domain.model import RawSender
from ingest.domain.shipping import map_carrier_code
from ingest.domain.surveys import score_error
from ingest.entrypoints.deps import IngestDeps
from ingest.entrypoints.routing import IngestRoute, as_json, problem_statuses
from ingest.entrypoints.signal_models import CallEventIn, ShipmentEventIn, SurveyIn
from ingest.service_layer.commerce import accept_order
from ingest.service_layer.signals import Signal, accept_signal
from sbcontracts.events.common import Instant
from sbcontracts.events.ingest import (
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallData,
    CallOffered,
    OrderItem,
    OrderPlaced,
    ShipmentEventReceived,
    ShipmentRef,
    SurveyResponded,
)
from sbkit.auth import Principal, requires
from sbkit.problems import DomainError, error_responses

_CALLS: dict[str, type[CallData]] = {
    "offered": CallOffered,
    "answered": CallAnswered,
    "abandoned": CallAbandoned,
    "completed": CallCompleted,
}
# A redelivery (the same natural id again) answers 200 and changes nothing.
_ERRORS = {
    200: {"description": "Already accepted: a redelivery, nothing new"},
    **error_responses(*problem_statuses(409, 422)),
}


class InvalidField(DomainError):
    """A field that passed the schema but not the domain rules."""

    status, title = 422, "Unprocessable content"


class OrderIn(BaseModel):
    """An order as the shop sends it (email and phone are normalised here)."""

    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=200)
    customer_email: str | None = Field(default=None, max_length=320)
    customer_phone: str | None = Field(default=None, max_length=40)
    customer_name: str | None = Field(default=None, max_length=300)
    customer_language: str | None = Field(default=None, max_length=8)
    customer_timezone: str | None = Field(default=None, max_length=64)
    placed_at: Instant
    currency: str | None = Field(default=None, pattern="^[A-Z]{3}$")
    total_minor: int | None = Field(default=None, ge=0)
    items: list[OrderItem] = Field(default_factory=list, max_length=500)
    promised_from: date | None = None
    promised_to: date | None = None
    shipments: list[ShipmentRef] = Field(default_factory=list, max_length=50)
    status: str | None = Field(default=None, max_length=50)
    region: str | None = Field(default=None, pattern="^[A-Za-z]{2}$")


def _accepted(new: bool) -> Response:
    return as_json({"duplicate": not new}, 202 if new else 200)


def _order(body: OrderIn) -> OrderPlaced:
    try:
        email = canonical_email(body.customer_email) if body.customer_email else None
        phone = e164(body.customer_phone, body.region) if body.customer_phone else None
    except InvalidHandle as exc:
        raise InvalidField(str(exc)) from exc
    values = body.model_dump(exclude={"region", "customer_email", "customer_phone"})
    return OrderPlaced(**values, customer_email=email, customer_phone=phone)


def signals_router(deps: IngestDeps) -> APIRouter:
    """Routes of calls, orders, shipments and surveys."""
    router = APIRouter(route_class=IngestRoute)
    _call_and_survey_routes(router, deps)
    _commerce_routes(router, deps)
    return router


def _call_and_survey_routes(router: APIRouter, deps: IngestDeps) -> None:
    """Telephony adapter call events and survey answers."""
    new_uow = deps.runtime.uow

    @router.post("/v1/calls/events", status_code=202, tags=["calls"], responses=_ERRORS)
    async def call_event(
        body: CallEventIn, request: Request, principal: Principal = requires("calls:write")
    ) -> Response:
        """A telephony adapter's call event; once per (call id, event)."""
        caller = None
        if body.caller:
            raw = RawSender(body.caller.kind, body.caller.value, body.caller.scope)
            caller = normalise_handle(raw, region=body.region)
        values = body.model_dump(exclude={"event", "caller", "region"})
        data = _CALLS[body.event](**values, caller=caller)
        signal = Signal("call", f"{body.call_id}:{body.event}", data, body.call_id)
        return _accepted(
            await accept_signal(new_uow, deps.context(principal.tenant_id, request=request), signal)
        )

    @router.post("/v1/surveys/responses", status_code=202, tags=["surveys"], responses=_ERRORS)
    async def survey(
        body: SurveyIn, request: Request, principal: Principal = requires("surveys:write")
    ) -> Response:
        """A CSAT (1-5), NPS (0-10) or CES (1-7) answer linked to a ticket or customer."""
        problem = score_error(body.kind, body.score)
        if problem:
            raise InvalidField(problem)
        data = SurveyResponded(**body.model_dump())
        aggregate = body.customer_id or body.ticket_id or body.response_id
        signal = Signal("survey", body.response_id, data, aggregate)
        return _accepted(
            await accept_signal(new_uow, deps.context(principal.tenant_id, request=request), signal)
        )


def _commerce_routes(router: APIRouter, deps: IngestDeps) -> None:
    """Orders and shipment tracking events."""
    new_uow = deps.runtime.uow

    @router.post("/v1/orders", status_code=202, tags=["commerce"], responses=_ERRORS)
    async def order(
        body: OrderIn, request: Request, principal: Principal = requires("orders:write")
    ) -> Response:
        """An order: placed the first time, updated when it changes, nothing on a redelivery."""
        ctx = deps.context(principal.tenant_id, request=request)
        emitted = await accept_order(new_uow, ctx, _order(body))
        return as_json(
            {"duplicate": emitted is None, "event": emitted}, 200 if emitted is None else 202
        )

    @router.post("/v1/shipments/events", status_code=202, tags=["commerce"], responses=_ERRORS)
    async def shipment_event(
        body: ShipmentEventIn, request: Request, principal: Principal = requires("shipments:write")
    ) -> Response:
        """A carrier tracking event, mapped to the status model; once per semantic key."""
        mapped = map_carrier_code(body.carrier, body.carrier_code)
        data = ShipmentEventReceived(
            **body.model_dump(exclude={"status"}),
            status=body.status or mapped.status,
            is_delay=mapped.is_delay,
            reason=mapped.reason,
        )
        natural = (
            f"{body.shipment_id}:{body.carrier_code or data.status}:{body.occurred_at.isoformat()}"
        )
        signal = Signal("shipment", natural[:400], data, body.order_id or body.shipment_id)
        return _accepted(
            await accept_signal(new_uow, deps.context(principal.tenant_id, request=request), signal)
        )
