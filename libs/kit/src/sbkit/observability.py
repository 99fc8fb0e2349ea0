"""Prometheus metrics shared by the kit, and OpenTelemetry trace context carried in Kafka headers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import baggage, propagate, trace
from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from sbkit.bus.ports import Record

tracer = trace.get_tracer("switchboard")

HTTP_REQUESTS = Counter(
    "sb_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram("sb_http_request_seconds", "HTTP request latency", ["service", "route"])
RECORDS_HANDLED = Counter("sb_bus_records_handled_total", "Records handled", ["group", "topic"])
HANDLER_ERRORS = Counter(
    "sb_bus_handler_errors_total", "Handler failures after retries", ["group", "topic", "error"]
)
BATCH_FALLBACKS = Counter(
    "sb_bus_batch_fallbacks_total",
    "Batches handled again one record at a time after the batch handler failed",
    ["group", "topic", "error"],
)
DLQ_RECORDS = Counter("sb_bus_dlq_records_total", "Records sent to a DLQ", ["topic"])
CONSUMER_LAG = Gauge(
    "sb_bus_consumer_lag", "Records not yet committed", ["group", "topic", "partition"]
)
CONSUMER_STALLS = Counter(
    "sb_bus_consumer_stalls_total",
    "Consumers replaced because their group's offsets stopped while records waited",
    ["group"],
)
OUTBOX_BACKLOG = Gauge("sb_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("sb_outbox_published_total", "Outbox rows relayed", ["service"])


def trace_headers() -> tuple[tuple[str, bytes], ...]:
    """The current trace context (W3C traceparent) as record headers."""
    if not trace.get_current_span().get_span_context().is_valid and not baggage.get_all():
        return ()  # nothing to carry: skip the propagators (a hot path when emitting in bulk)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((k, v.encode()) for k, v in carrier.items())


@contextmanager
def consume_span(record: Record) -> Iterator[None]:
    """A span for handling one record, continuing the producer's trace."""
    carrier = {k: v.decode(errors="replace") for k, v in record.headers}
    ctx = propagate.extract(carrier)
    with tracer.start_as_current_span(
        f"consume {record.topic}",
        context=ctx,
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.destination.name": record.topic,
            "messaging.kafka.partition": record.partition,
            "messaging.kafka.offset": record.offset,
        },
    ):
        yield


@contextmanager
def batch_span(records: Sequence[Record]) -> Iterator[None]:
    """One span for handling records together (OpenTelemetry's messaging convention for
    batches): it links to each record's producer trace, and the events emitted while it is
    current carry it on, so a trace viewer leads from any source message to what it caused."""
    links = []
    for record in records:
        ctx = propagate.extract({k: v.decode(errors="replace") for k, v in record.headers})
        context = trace.get_current_span(ctx).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    with tracer.start_as_current_span(
        f"consume {records[0].topic}",
        kind=trace.SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.destination.name": records[0].topic,
            "messaging.batch.message_count": len(records),
        },
    ):
        yield
