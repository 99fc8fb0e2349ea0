"""The acceptance journey over real Kafka and PostgreSQL: one person, four contacts, one card."""

from __future__ import annotations

from typing import Any

from crm.adapters import orm
from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.topics import partition_key
from sbkit.bus.ports import OutgoingRecord
from tests.integration.crm.conftest import Stack
from tests.unit.crm.conftest import count, eventually, message, order

EMAIL, PHONE = "anna@example.pl", "+48601234567"


async def _send(stack: Stack, event: CloudEvent[Any], key: str) -> None:
    topic = stack.topics[event.data.topic]
    await stack.bus.publish(
        [OutgoingRecord(topic, partition_key(event.tenantid, key), encode(event))]
    )


async def _find(stack: Stack, **params: str) -> list[dict[str, Any]]:
    r = await stack.api.call("GET", "/v1/customers", params=params)
    assert r.status_code == 200, r.text
    return list(r.json())


async def _timeline(stack: Stack, cid: str) -> list[str]:
    r = await stack.api.call("GET", f"/v1/customers/{cid}/timeline")
    return [e["kind"] + ":" + e["ref"] for e in r.json()["entries"]]


async def test_email_sms_whatsapp_then_order_is_one_customer_and_undo_splits_it_back(
    stack: Stack,
) -> None:
    await _send(stack, message(EMAIL, name="Anna"), EMAIL)
    await _send(stack, message(PHONE, kind=HandleKind.PHONE, channel=Channel.SMS, minutes=5), PHONE)
    await _send(
        stack, message(PHONE, kind=HandleKind.PHONE, channel=Channel.WHATSAPP, minutes=9), PHONE
    )

    async def three_messages() -> bool:
        return await count(stack.service, orm.timeline) == 3

    await eventually(three_messages, 60)
    by_email, by_phone = (await _find(stack, email=EMAIL))[0], (await _find(stack, phone=PHONE))[0]
    assert by_email["id"] != by_phone["id"]  # nothing links them yet
    cards_before = {
        c["id"]: (await stack.api.call("GET", f"/v1/customers/{c['id']}")).json()
        for c in (by_email, by_phone)
    }
    timelines_before = {cid: await _timeline(stack, cid) for cid in cards_before}

    await _send(stack, order("10045", email=EMAIL, phone="+48 601 234 567"), "10045")

    async def merged() -> bool:
        return await count(stack.service, orm.customers, status="active") == 1

    await eventually(merged, 60)
    one = (await _find(stack, email=EMAIL))[0]
    assert (await _find(stack, phone=PHONE))[0]["id"] == one["id"]
    timeline = await _timeline(stack, one["id"])
    assert len(timeline) == 4 and timeline[0] == "order:10045"
    card = (await stack.api.call("GET", f"/v1/customers/{one['id']}")).json()
    assert {i["value"] for i in card["identities"]} == {EMAIL, PHONE}
    merge_id = (await stack.api.call("GET", f"/v1/customers/{one['id']}/export")).json()["merges"][
        0
    ]["id"]

    undone = await stack.api.call("POST", f"/v1/merges/{merge_id}/undo")
    assert undone.status_code == 200, undone.text
    for cid, before in cards_before.items():
        after = (await stack.api.call("GET", f"/v1/customers/{cid}")).json()
        assert after["identities"] == before["identities"]
        assert after["attributes"] == before["attributes"]
        assert after["id"] == cid
    survivor = one["id"]
    restored = next(c for c in cards_before if c != survivor)
    assert await _timeline(stack, restored) == timelines_before[restored]
    assert await _timeline(stack, survivor) == ["order:10045", *timelines_before[survivor]]


async def test_poison_and_duplicate_on_real_kafka(stack: Stack) -> None:
    topic = stack.topics["sb.messages.v1"]
    event = message("dup@example.pl")
    await stack.bus.publish([OutgoingRecord(topic, "acme:x", b"\xff not an event")])
    await _send(stack, event, "dup")
    await _send(stack, event, "dup")
    await _send(stack, message("dup@example.pl", minutes=1), "dup")

    async def both() -> bool:
        return await count(stack.service, orm.timeline) == 2

    async def dead_lettered() -> bool:
        return bool(await stack.bus.read_topic(f"{topic}.dlq"))

    await eventually(both, 60)
    await eventually(dead_lettered, 60)
    dead = await stack.bus.read_topic(f"{topic}.dlq")
    assert [r.value for r in dead] == [b"\xff not an event"]
    assert await count(stack.service, orm.customers) == 1
