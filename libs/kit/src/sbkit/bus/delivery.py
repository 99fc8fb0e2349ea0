"""What both backends share: batches with a per-record fallback, bounded retries, DLQ records."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
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

from sbkit.bus.ports import BatchHandler, OutgoingRecord, Record, Subscription
from sbkit.observability import (
    BATCH_FALLBACKS,
    DLQ_RECORDS,
    HANDLER_ERRORS,
    batch_span,
    consume_span,
)

log = structlog.get_logger(__name__)

DLQ_HEADER_PREFIX = "dlq."
_NO_SPAN: AbstractContextManager[None] = contextlib.nullcontext()
Publish = Callable[[Sequence[OutgoingRecord]], Awaitable[None]]


def chunks(sub: Subscription, records: Sequence[Record]) -> Iterator[Sequence[Record]]:
    """One partition's polled records in the pieces handled (and committable) at once."""
    size = max(1, sub.max_batch) if sub.batch_handler is not None else 1
    for start in range(0, len(records), size):
        yield records[start : start + size]


async def handle_chunk(sub: Subscription, chunk: Sequence[Record], publish: Publish) -> None:
    """Handle records of one partition in order: as one batch when the subscription can, else
    (or when the batch failed) one by one, failures to the DLQ. Returns once all are settled."""
    batch = sub.batch_handler
    if batch is not None and len(chunk) > 1 and await try_batch(sub, batch, chunk):
        return
    for record in chunk:
        failure = await handle_with_retry(sub, record)
        if failure is not None:
            await publish([dlq_record(record, failure, group=sub.group)])


async def try_batch(sub: Subscription, batch: BatchHandler, chunk: Sequence[Record]) -> bool:
    """Run the batch handler; False (after logging) if the records must be handled again in
    smaller pieces (the caller's fallback; one record at a time in `handle_chunk`)."""
    try:
        await batch(chunk)
    except Exception as exc:  # noqa: BLE001 - the per-record path decides: retry, DLQ or done
        BATCH_FALLBACKS.labels(sub.group or "-", chunk[0].topic, type(exc).__name__).inc()
        log.info(
            "bus.batch_fallback",
            topic=chunk[0].topic,
            partition=chunk[0].partition,
            offset=chunk[0].offset,
            records=len(chunk),
            error=type(exc).__name__,
        )
        return False
    return True


class Failure:
    """Why a record could not be handled."""

    def __init__(self, exc: BaseException, attempts: int, first_failure: float) -> None:
        self.exc = exc
        self.attempts = attempts
        self.first_failure = first_failure


async def handle_with_retry(sub: Subscription, record: Record) -> Failure | None:
    """Run the handler; retry transient errors within the budget. None means handled."""
    try:
        with record_span(record):
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
                with record_span(record):
                    await sub.handler(record)
    except Exception as exc:  # noqa: BLE001 - every failure is routed to the DLQ, never lost
        return _failed(sub, record, exc, attempts, first_failure)
    return None


def records_span(records: Sequence[Record]) -> AbstractContextManager[None]:
    """`record_span` for records handled together: one span linked to each record's trace,
    skipped on the same terms."""
    return batch_span(records) if _worth_a_span(records) else _NO_SPAN


def record_span(record: Record) -> AbstractContextManager[None]:
    """The consume span, or nothing when it could neither be recorded nor carry a trace on.

    With no tracer provider installed every span is a no-op; the span still matters when the
    record carries trace context (a handler that publishes passes it on) or when a trace is
    already current. Otherwise extracting and starting a no-op span is pure cost (about half
    the per-record CPU of the consume path), so it is skipped.
    """
    return consume_span(record) if _worth_a_span((record,)) else _NO_SPAN


def _worth_a_span(records: Sequence[Record]) -> bool:
    if any(r.headers for r in records):
        fields = propagate.get_global_textmap().fields
        if any(k in fields for r in records for k, _ in r.headers):
            return True
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return True  # an SDK is installed: every record gets its span
    return trace.get_current_span().get_span_context().is_valid


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
