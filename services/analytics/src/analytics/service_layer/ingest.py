"""Use case: fold one input event into its bucket (the runtime's inbox already dropped duplicates)."""

from __future__ import annotations

from typing import Any

from analytics.adapters import repository
from analytics.domain import components as comp
from analytics.domain import presence
from analytics.service_layer import derive
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel
from sbcontracts.events.crm import MessageAttributed
from sbcontracts.events.ingest import (
    CallAbandoned,
    CallAnswered,
    CallCompleted,
    CallData,
    CallOffered,
    SurveyResponded,
)
from sbcontracts.events.notifier import NotificationData
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    TicketAgentReplied,
    TicketData,
    TicketOpened,
    TicketReopened,
    TicketResolved,
)
from sbkit.db.uow import UnitOfWork

InvalidScore = comp.InvalidScore


def _call(data: CallData) -> list[comp.Increment]:
    if isinstance(data, CallOffered):
        return comp.call_offered()
    if isinstance(data, CallAnswered):
        return comp.call_answered(data.wait_ms)
    if isinstance(data, CallAbandoned):
        return comp.call_abandoned(data.wait_ms)
    if isinstance(data, CallCompleted):
        return comp.call_completed(talk_ms=data.talk_ms, hold_ms=data.hold_ms, wrap_ms=data.wrap_ms)
    return []


def _ticket(data: TicketData) -> list[comp.Increment]:
    if isinstance(data, TicketOpened):
        return comp.ticket_opened()
    if isinstance(data, TicketAgentReplied):
        return (
            comp.first_response(data.response_ms, data.business_response_ms)
            if (data.first_response)
            else []
        )
    if isinstance(data, TicketResolved):
        return comp.ticket_resolved(data.resolution_ms, data.business_resolution_ms)
    if isinstance(data, TicketReopened):
        return comp.ticket_reopened()
    return []  # classifications are derived per case (service_layer.derive)


async def _busy(uow: UnitOfWork, tenant: str, data: CallCompleted) -> None:
    """A handled call keeps its agent busy over the intervals it spans (occupancy)."""
    if not data.agent_id:
        return
    handle = data.talk_ms + data.hold_ms + data.wrap_ms
    for slot, incs in presence.busy_spans(data.occurred_at, handle):
        bucket = comp.Bucket(
            tenant, slot, queue=data.queue or "", channel=Channel.VOICE.value, agent=data.agent_id
        )
        await repository.add(uow.session, bucket, incs)


async def on_event(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
    """Add the event's components to the bucket of its event time; other event types are ignored."""
    data = event.data
    if isinstance(data, TicketData) and isinstance(data, derive.TICKET_FACTS):
        await derive.on_customer_event(uow.session, event.tenantid, data)
    elif isinstance(data, NotificationData):
        await derive.on_customer_event(uow.session, event.tenantid, data)
        return
    elif isinstance(data, AgentPresenceChanged):
        await derive.on_presence(uow.session, event.tenantid, data)
        return
    elif isinstance(data, CallCompleted):
        await _busy(uow, event.tenantid, data)
    if isinstance(data, CallData):
        incs = _call(data)
        bucket = comp.Bucket(
            event.tenantid,
            comp.interval_of(data.occurred_at),
            queue=data.queue or "",
            channel=Channel.VOICE.value,
            agent=data.agent_id or "",
        )
    elif isinstance(data, TicketData):
        incs = _ticket(data)
        channel = data.channel.value if data.channel else ""
        bucket = comp.Bucket(
            event.tenantid,
            comp.interval_of(data.occurred_at),
            queue=data.queue or "",
            channel=channel,
            agent=data.agent_id or "",
        )
    elif isinstance(data, SurveyResponded):
        incs = comp.survey(data.kind.value, data.score)
        bucket = comp.Bucket(event.tenantid, comp.interval_of(data.responded_at))
    elif isinstance(data, MessageAttributed):
        incs = comp.message_attributed()
        bucket = comp.Bucket(
            event.tenantid,
            comp.interval_of(data.message.received_at),
            channel=data.message.channel.value,
        )
    else:
        return
    await repository.add(uow.session, bucket, incs)
