"""Use case: fold one input event into its bucket (the runtime's inbox already dropped duplicates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analytics.adapters import repository
from analytics.domain import components as comp
from analytics.domain import presence
from analytics.service_layer import derive, merges
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel
from sbcontracts.events.crm import CustomerMerged, CustomerUnmerged, MessageAttributed
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
Parts = tuple[comp.Bucket, list[comp.Increment]]


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


def _busy(tenant: str, data: CallCompleted) -> list[Parts]:
    """A handled call keeps its agent busy over the intervals it spans (occupancy)."""
    if not data.agent_id:
        return []
    handle = data.talk_ms + data.hold_ms + data.wrap_ms
    return [
        (comp.Bucket(tenant, slot, queue=data.queue or "", channel=Channel.VOICE.value,
                     agent=data.agent_id), incs)
        for slot, incs in presence.busy_spans(data.occurred_at, handle)
    ]  # fmt: skip


def increments(tenant: str, data: Any) -> list[Parts]:
    """What an event adds to buckets by itself (a pure function; derived parts are not included)."""
    if isinstance(data, CallData):
        bucket = comp.Bucket(
            tenant,
            comp.interval_of(data.occurred_at),
            queue=data.queue or "",
            channel=Channel.VOICE.value,
            agent=data.agent_id or "",
        )
        busy = _busy(tenant, data) if isinstance(data, CallCompleted) else []
        return [*busy, (bucket, _call(data))]
    if isinstance(data, TicketData):
        channel = data.channel.value if data.channel else ""
        bucket = comp.Bucket(
            tenant,
            comp.interval_of(data.occurred_at),
            queue=data.queue or "",
            channel=channel,
            agent=data.agent_id or "",
        )
        return [(bucket, _ticket(data))]
    if isinstance(data, SurveyResponded):
        incs = comp.survey(data.kind.value, data.score)
        return [(comp.Bucket(tenant, comp.interval_of(data.responded_at)), incs)]
    if isinstance(data, MessageAttributed):
        bucket = comp.Bucket(
            tenant,
            comp.interval_of(data.message.received_at),
            channel=data.message.channel.value,
        )
        return [(bucket, comp.message_attributed())]
    return []


async def _derive(uow: UnitOfWork, event: CloudEvent[Any], deltas: repository.Deltas) -> None:
    """Derived parts (cases, alerts, presence, customer merges): they read and update stored
    facts, so in order; their component differences go into `deltas`."""
    data = event.data
    if isinstance(data, TicketData) and isinstance(data, derive.TICKET_FACTS):
        await derive.on_customer_event(uow.session, event.tenantid, data, deltas)
    elif isinstance(data, NotificationData):
        await derive.on_customer_event(uow.session, event.tenantid, data, deltas)
    elif isinstance(data, AgentPresenceChanged):
        await derive.on_presence(uow.session, event.tenantid, data, deltas)
    elif isinstance(data, CustomerMerged):
        await merges.on_merged(uow.session, event.tenantid, data, deltas)
    elif isinstance(data, CustomerUnmerged):
        await merges.on_unmerged(uow.session, event.tenantid, data, deltas)


async def on_event(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
    """Add the event's components to the bucket of its event time; other event types are ignored."""
    await on_events(uow, [event])


async def on_events(uow: UnitOfWork, events: Sequence[CloudEvent[Any]]) -> None:
    """A batch of new events with the effect of `on_event` on each in order: derived parts event
    by event, and every bucket's own increments summed in memory and upserted once (all additive,
    so the order of the sums does not matter). Every component row a transaction changes is
    upserted by the one `add_deltas` at its end, in key order: two transactions touching the
    same rows (a tenant's day and month rollups) wait for each other and never deadlock."""
    deltas: repository.Deltas = {}
    await derive.prelock(uow.session, events)
    for event in events:
        await _derive(uow, event, deltas)
        for bucket, incs in increments(event.tenantid, event.data):
            repository.collect(deltas, bucket, incs)
    await repository.add_deltas(uow.session, deltas)
