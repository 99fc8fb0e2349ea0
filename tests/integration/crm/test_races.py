"""Races on real PostgreSQL: first contacts, merges racing messages, opposite merges."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from crm.adapters import orm
from sbcontracts.events.common import Channel, HandleKind
from tests.integration.crm.conftest import Stack
from tests.unit.crm.conftest import count, deliver, message, order

PHONE = "+48601234567"


async def _deliver_all(stack: Stack, events: list[Any]) -> None:
    """Run the messages consumer on every event at once (one transaction each)."""
    await asyncio.gather(*(deliver(stack.service, e, stack.topics[e.data.topic]) for e in events))


async def _on_merged_away(stack: Stack) -> int:
    """Rows still owned by a merged-away customer (must be none)."""
    c = orm.customers.c
    gone = select(c.id).where(c.status == "merged")
    total = 0
    async with stack.service.runtime.uow() as uow:
        for t in orm.OWNED.values():
            q = select(func.count()).select_from(t).where(t.c.customer_id.in_(gone))
            total += int((await uow.session.execute(q)).scalar_one())
    return total


async def test_concurrent_first_messages_from_one_new_handle_make_one_customer(
    stack: Stack,
) -> None:
    events = [message("new@example.pl", minutes=i) for i in range(12)]
    await _deliver_all(stack, events)
    assert await count(stack.service, orm.customers) == 1
    assert await count(stack.service, orm.identities) == 1
    assert await count(stack.service, orm.timeline) == 12


async def test_messages_racing_a_merge_end_on_the_survivor(stack: Stack) -> None:
    await deliver(stack.service, message("anna@example.pl"), stack.topics["sb.messages.v1"])
    await deliver(
        stack.service,
        message(PHONE, kind=HandleKind.PHONE, channel=Channel.SMS),
        stack.topics["sb.messages.v1"],
    )
    a = (await stack.api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})).json()
    b = (await stack.api.call("GET", "/v1/customers", params={"phone": PHONE})).json()
    racing = [
        message(PHONE, kind=HandleKind.PHONE, channel=Channel.WHATSAPP, minutes=i)
        for i in range(1, 9)
    ]
    merge = stack.api.call(
        "POST", f"/v1/customers/{a[0]['id']}/merge", json={"other_id": b[0]["id"]}
    )
    results = await asyncio.gather(merge, _deliver_all(stack, racing))
    assert results[0].status_code == 200, results[0].text
    assert await _on_merged_away(stack) == 0
    assert await count(stack.service, orm.timeline, customer_id=a[0]["id"]) == 10


async def test_opposite_concurrent_merges_one_wins_the_other_conflicts(stack: Stack) -> None:
    ids = []
    for h in ("a@example.pl", "b@example.pl"):
        r = await stack.api.call("POST", "/v1/customers", json={"email": h})
        ids.append(r.json()["id"])
    a, b = ids
    answers = await asyncio.gather(
        stack.api.call("POST", f"/v1/customers/{a}/merge", json={"other_id": b}),
        stack.api.call("POST", f"/v1/customers/{b}/merge", json={"other_id": a}),
    )
    assert sorted(r.status_code for r in answers) == [200, 409]
    assert await count(stack.service, orm.customers, status="active") == 1
    assert await count(stack.service, orm.merges) == 1
    assert await _on_merged_away(stack) == 0


async def test_opposite_concurrent_links_make_one_customer_without_errors(stack: Stack) -> None:
    for _ in range(5):
        a = (await stack.api.call("POST", "/v1/customers", json={"email": f"{_}@a.pl"})).json()
        b = (await stack.api.call("POST", "/v1/customers", json={"email": f"{_}@b.pl"})).json()
        answers = await asyncio.gather(
            stack.api.call("POST", f"/v1/customers/{a['id']}/links", json={"email": f"{_}@b.pl"}),
            stack.api.call("POST", f"/v1/customers/{b['id']}/links", json={"email": f"{_}@a.pl"}),
        )
        assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
        assert answers[0].json()["customer_id"] == answers[1].json()["customer_id"]
    assert await count(stack.service, orm.customers, status="active") == 5
    assert await _on_merged_away(stack) == 0


async def test_orders_linking_the_same_people_crosswise_merge_once(stack: Stack) -> None:
    topic = stack.topics["sb.messages.v1"]
    for n in range(4):
        await deliver(stack.service, message(f"{n}@a.pl"), topic)
        await deliver(stack.service, message(f"+4860123456{n}", kind=HandleKind.PHONE), topic)
    crosswise = [
        order(f"o{n}-{k}", email=f"{n}@a.pl", phone=f"+4860123456{(n + k) % 4}")
        for n in range(4)
        for k in range(2)
    ]
    await asyncio.gather(
        *(deliver(stack.service, o, stack.topics["sb.commerce.v1"]) for o in crosswise)
    )
    assert await count(stack.service, orm.customers, status="active") == 1
    assert await count(stack.service, orm.orders) == 8
    assert await _on_merged_away(stack) == 0
