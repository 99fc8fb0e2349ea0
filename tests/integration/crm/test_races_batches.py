"""Races of batched attribution on real PostgreSQL: concurrent batches, batches racing a merge."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from crm.adapters import orm
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel, HandleKind
from sbkit.bus.delivery import handle_chunk
from sbkit.bus.ports import OutgoingRecord, Record
from tests.integration.crm.conftest import Stack
from tests.integration.crm.test_races import PHONE, _on_merged_away
from tests.unit.crm.conftest import count, deliver, message


async def _batches(stack: Stack, batches: Sequence[Sequence[CloudEvent[Any]]]) -> None:
    """Run the messages consumer on every batch at once, as the bus does (fallback included)."""
    topic = stack.topics["sb.messages.v1"]
    sub = next(s for s in stack.service.runtime._subscriptions if topic in s.topics)
    assert sub.batch_handler is not None

    async def nowhere(_: Sequence[OutgoingRecord]) -> None:
        raise AssertionError("nothing should reach the DLQ")

    def records(events: Sequence[CloudEvent[Any]]) -> list[Record]:
        return [Record(topic, 0, n, None, encode(e)) for n, e in enumerate(events)]

    await asyncio.gather(*(handle_chunk(sub, records(b), nowhere) for b in batches))


async def test_concurrent_batches_with_one_new_handle_make_one_customer(stack: Stack) -> None:
    batches = [
        [message("new@example.pl", minutes=10 * b + i) for i in range(3)]
        + [message(f"only{b}@example.pl", minutes=10 * b + 5)]
        for b in range(4)
    ]
    await _batches(stack, batches)
    assert await count(stack.service, orm.customers, status="active") == 5
    assert await count(stack.service, orm.identities) == 5
    assert await count(stack.service, orm.timeline) == 16
    assert await count(stack.service, orm.customers) == 5  # no orphan from a lost race


async def test_batches_racing_a_merge_end_on_the_survivor(stack: Stack) -> None:
    topic = stack.topics["sb.messages.v1"]
    await deliver(stack.service, message("anna@example.pl"), topic)
    await deliver(stack.service, message(PHONE, kind=HandleKind.PHONE, channel=Channel.SMS), topic)
    a = (await stack.api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})).json()
    b = (await stack.api.call("GET", "/v1/customers", params={"phone": PHONE})).json()
    racing = [
        [
            message(PHONE, kind=HandleKind.PHONE, channel=Channel.WHATSAPP, minutes=4 * n + i)
            for i in range(1, 5)
        ]
        + [message("anna@example.pl", minutes=4 * n + 3)]
        for n in range(4)
    ]
    merge = stack.api.call(
        "POST", f"/v1/customers/{a[0]['id']}/merge", json={"other_id": b[0]["id"]}
    )
    results = await asyncio.gather(merge, _batches(stack, racing))
    assert results[0].status_code == 200, results[0].text
    assert await _on_merged_away(stack) == 0
    assert await count(stack.service, orm.timeline, customer_id=a[0]["id"]) == 2 + 20
