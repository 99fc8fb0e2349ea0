"""Trace context crosses a bus hop: the consumer's span continues the producer's trace."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sbcontracts.envelope import new_event
from sbcontracts.events.control import TenantCreated
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord, Record, Subscription
from sbkit.db.uow import event_headers

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


async def test_consumer_span_continues_the_producer_trace() -> None:
    tracer = trace.get_tracer("test")
    bus = LocalBus()
    done = asyncio.Event()

    async def handler(r: Record) -> None:
        done.set()

    bus.subscribe(Subscription(group="g", topics=["t"], handler=handler))
    await bus.start()
    event = new_event(TenantCreated(tenant_id="a", name="a"), tenant_id="a", source="test")
    with tracer.start_as_current_span("http request") as parent:
        headers = tuple((k, v.encode()) for k, v in event_headers(event))
        await bus.publish([OutgoingRecord("t", "a:1", b"{}", headers)])
    await asyncio.wait_for(done.wait(), 5)
    await bus.stop()
    consumer = [s for s in exporter.get_finished_spans() if s.name == "consume t"]
    assert consumer and consumer[0].context.trace_id == parent.get_span_context().trace_id
    assert consumer[0].parent is not None
    assert consumer[0].parent.span_id == parent.get_span_context().span_id
    assert ("traceparent" in dict(headers)) and dict(headers)["ce_type"].startswith(b"com.")
