"""What both backends share: running a handler with bounded retries, and building DLQ records."""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime

import structlog
from opentelemetry import propagate, trace
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from sbkit.bus.ports import OutgoingRecord, Record, Subscription
from sbkit.observability import DLQ_RECORDS, HANDLER_ERRORS, consume_span

log = structlog.get_logger(__name__)

DLQ_HEADER_PREFIX = "dlq."
_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()


class Failure:
    """Why a record could not be handled."""

    def __init__(self, exc: BaseException, attempts: int, first_failure: float) -> None:
        self.exc = exc
        self.attempts = attempts
        self.first_failure = first_failure


async def handle_with_retry(sub: Subscription, record: Record) -> Failure | None:
    """Run the handler; retry transient errors within the budget. None means handled."""
    try:
        with _span(record):
            await sub.handler(record)
        return None  # the hot path: no retry machinery unless something failed
    except sub.poison_types as exc:
        return _failed(sub, record, exc, attempts=1, first_failure=time.time())
    except Exception as exc:  # noqa: BLE001 - transient until the retry budget says otherwise
        first_error: Exception = exc
        first_failure = time.time()
    attempts = 1
    policy = sub.retry
    if policy.attempts <= 1:
        return _failed(sub, record, first_error, attempts, first_failure)
    retrying = AsyncRetrying(
        stop=stop_after_attempt(max(1, policy.attempts - 1)),
        wait=wait_exponential(multiplier=policy.initial_backoff_s, max=policy.max_backoff_s),
        # only errors are retried: cancellation (shutdown, kill) must end the handler at once
        retry=retry_if_exception_type(Exception) & retry_if_not_exception_type(sub.poison_types),
        reraise=True,
    )
    await asyncio.sleep(policy.initial_backoff_s)
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                with _span(record):
                    await sub.handler(record)
    except Exception as exc:  # noqa: BLE001 - every failure is routed to the DLQ, never lost
        return _failed(sub, record, exc, attempts, first_failure)
    return None


def _span(record: Record) -> AbstractContextManager[None]:
    """The consume span, or nothing when it could neither be recorded nor carry a trace on.

    With no tracer provider installed every span is a no-op; the span still matters when the
    record carries trace context (a handler that publishes passes it on) or when a trace is
    already current. Otherwise extracting and starting a no-op span is pure cost (about half
    the per-record CPU of the consume path), so it is skipped.
    """
    if record.headers:
        fields = propagate.get_global_textmap().fields
        if any(k in fields for k, _ in record.headers):
            return consume_span(record)
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return consume_span(record)  # an SDK is installed: every record gets its span
    if trace.get_current_span().get_span_context().is_valid:
        return consume_span(record)
    return _NO_SPAN


def _failed(
    sub: Subscription, record: Record, exc: BaseException, attempts: int, first_failure: float
) -> Failure:
    HANDLER_ERRORS.labels(sub.group or "-", record.topic, type(exc).__name__).inc()
    log.warning(
        "record.failed",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        error=type(exc).__name__,
        attempts=attempts,
    )
    return Failure(exc, attempts, first_failure)


def dlq_record(record: Record, failure: Failure, *, group: str | None) -> OutgoingRecord:
    """The failed record, unchanged, on `<topic>.dlq`, with headers saying where and why."""
    first = datetime.fromtimestamp(failure.first_failure, UTC).isoformat()
    meta = {
        "topic": record.topic,
        "partition": str(record.partition),
        "offset": str(record.offset),
        "key": record.key or "",
        "group": group or "",
        "error.class": type(failure.exc).__name__,
        "error.message": str(failure.exc)[:1000],
        "attempts": str(failure.attempts),
        "first_failure": first,
    }
    kept = tuple((k, v) for k, v in record.headers if not k.startswith(DLQ_HEADER_PREFIX))
    headers = kept + tuple((DLQ_HEADER_PREFIX + k, v.encode()) for k, v in meta.items())
    DLQ_RECORDS.labels(record.topic).inc()
    return OutgoingRecord(
        topic=f"{record.topic}.dlq", key=record.key or "", value=record.value, headers=headers
    )


def original_from_dlq(record: Record) -> OutgoingRecord:
    """Rebuild the original record from a DLQ record, for replay."""
    topic = (record.header(DLQ_HEADER_PREFIX + "topic") or b"").decode()
    if not topic:
        topic = record.topic.removesuffix(".dlq")
    kept = tuple((k, v) for k, v in record.headers if not k.startswith(DLQ_HEADER_PREFIX))
    return OutgoingRecord(topic=topic, key=record.key or "", value=record.value, headers=kept)
