"""Trace context crosses a bus hop: the consumer's span continues the producer's trace."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select

from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.control import TenantCreated
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import OutgoingRecord, Record, Subscription
from sbkit.consumer import batch_handler
from sbkit.db.engine import make_engine
from sbkit.db.uow import UnitOfWork, event_headers
from tests.fakes.effects import EffectStore, kit

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


async def test_a_batch_handled_at_once_links_every_source_trace_and_passes_its_own_on(
    tmp_path: Path,
) -> None:
    """Events emitted by a set-at-a-time handler carry the batch span's trace context, and
    that span links to each source record's trace (not only the first's, not none)."""
    store = EffectStore(make_engine(f"sqlite+aiosqlite:///{tmp_path}/e.db"))
    await store.create()
    tracer = trace.get_tracer("test")
    records, parents = [], []
    for i in range(3):
        event = new_event(TenantCreated(tenant_id=f"t{i}", name="x"), tenant_id="a", source="test")
        with tracer.start_as_current_span(f"request {i}") as parent:
            headers = tuple((k, v.encode()) for k, v in event_headers(event))
        parents.append(parent.get_span_context())
        records.append(Record("t", 0, i, "a", encode(event), headers))

    async def emit_all(uow: UnitOfWork, events: Sequence[CloudEvent[Any]]) -> None:
        await uow.emit_many([(e, "a") for e in events])

    handler = batch_handler(store.uow, consumer="c", handle=_unused, handle_batch=emit_all)
    await handler(records)
    async with store.sessions() as session:
        rows = (await session.execute(select(kit.outbox.c.headers))).scalars().all()
    [batch] = [s for s in exporter.get_finished_spans() if s.name == "consume t" and s.links]
    assert {link.context.span_id for link in batch.links} == {p.span_id for p in parents}
    carried = [dict(r)["traceparent"] for r in rows]
    assert len(carried) == 3
    assert all(t.split("-")[1] == f"{batch.context.trace_id:032x}" for t in carried)
    await store.engine.dispose()


async def _unused(uow: UnitOfWork, event: CloudEvent[Any]) -> None:
    raise AssertionError("the batch path handles these")
