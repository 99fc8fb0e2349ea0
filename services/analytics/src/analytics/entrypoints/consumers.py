"""Kafka consumers of analytics: each input topic folds into KPI buckets (inbox and DLQ by the runtime)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analytics.service_layer import ingest
from sbcontracts.envelope import CloudEvent
from sbcontracts.topics import (
    AGENTS,
    CALLS,
    CUSTOMERS,
    MESSAGES_ATTRIBUTED,
    NOTIFICATIONS,
    SURVEYS,
    TICKETS,
)
from sbkit.bus.ports import PoisonMessage
from sbkit.db.uow import UnitOfWork
from sbkit.runtime import ServiceRuntime

TOPICS = (
    CALLS.name,
    TICKETS.name,
    SURVEYS.name,
    MESSAGES_ATTRIBUTED.name,
    NOTIFICATIONS.name,
    AGENTS.name,
    CUSTOMERS.name,  # merges and their undos; the topic's other event types are ignored
)


async def fold(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
    """Any consumed topic: add the event to its bucket; a score off its scale can never apply."""
    try:
        await ingest.on_event(uow, event)
    except ingest.InvalidScore as exc:
        raise PoisonMessage(str(exc)) from exc


async def fold_batch(uow: UnitOfWork, events: Sequence[CloudEvent[Any]]) -> None:
    """A partition batch's new events: each touched bucket upserted once (`fold`, event by event,
    stays the fallback when the batch fails, e.g. on a poison event)."""
    try:
        await ingest.on_events(uow, events)
    except ingest.InvalidScore as exc:
        raise PoisonMessage(str(exc)) from exc


def register(runtime: ServiceRuntime, rename: Mapping[str, str] | None = None) -> None:
    """Subscribe one consumer per input topic (`rename` maps topic names, for isolated tests)."""
    names = dict(rename or {})
    for topic in TOPICS:
        consumer = topic.removeprefix("sb.").removesuffix(".v1").replace(".", "_")
        runtime.consume(consumer, [names.get(topic, topic)], fold, handle_batch=fold_batch)
