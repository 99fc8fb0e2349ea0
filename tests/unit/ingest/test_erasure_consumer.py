"""customer.erased on sb.customers.v1: the person's stored messages are scrubbed, once; poison DLQ'd."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sbcontracts.catalog import encode
from sbcontracts.envelope import new_event
from sbcontracts.events.crm import CustomerErased
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.topics import CUSTOMERS
from sbkit.bus.ports import OutgoingRecord
from tests.unit.ingest.conftest import Harness
from tests.unit.ingest.test_inbound_consumer import wait_for

ANNA = ("anna.kowalska@example.pl", "Anna Kowalska", "Kowalska")


async def _post(h: Harness, external_id: str, sender: str, name: str) -> str:
    body: dict[str, Any] = {
        "external_id": external_id,
        "channel": "webchat",
        "sender": {"kind": "email", "value": sender},
        "display_name": name,
        "text": f"Dzień dobry, tu {name}: moja paczka nie dotarła.",
        "conversation_id": f"conv-{external_id}",
    }
    r = await h.client.post("/v1/messages", json=body, headers=h.token())
    assert r.status_code in (200, 201), r.text
    return str(r.json()["message_id"])


def _erased(message_ids: list[str]) -> Any:
    data = CustomerErased(
        customer_id="c-anna", erased_ids=("c-anna",), message_ids=tuple(message_ids),
        erased_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
    )  # fmt: skip
    return new_event(data, tenant_id="acme", source="crm")


async def _stored(h: Harness, message_id: str) -> dict[str, Any]:
    r = await h.client.get(f"/v1/messages/{message_id}", headers=h.token())
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _dead(h: Harness, n: int) -> bool:
    return len(await h.bus.read_topic(CUSTOMERS.dlq)) >= n


async def test_erasure_scrubs_the_persons_messages_once_and_dead_letters_poison(
    harness: Harness,
) -> None:
    h = harness
    mine = [await _post(h, "w-1", ANNA[0], ANNA[1]), await _post(h, "w-2", ANNA[0], ANNA[1])]
    other = await _post(h, "w-3", "jan@example.pl", "Jan Nowak")
    event = _erased([*mine, "no-such-message"])
    bad = json.loads(encode(_erased(mine)))
    del bad["data"]["customer_id"]
    records = [encode(event), encode(event), encode(_erased(mine)), b"{not json"]
    records.append(json.dumps(bad).encode())
    await h.bus.publish([OutgoingRecord(CUSTOMERS.name, "acme:c-anna", v) for v in records])
    await wait_for(lambda: _dead(h, 2))
    await wait_for(lambda: _scrubbed(h, mine))
    for message_id in mine:
        stored = await _stored(h, message_id)
        assert not [p for p in ANNA if p.lower() in json.dumps(stored).lower()]
        assert MessageReceived.model_validate(stored).message_id == message_id  # still readable
        assert stored["channel"] == "webchat" and stored["language"] == "pl"  # facts for KPIs
    assert (await _stored(h, other))["display_name"] == "Jan Nowak"  # nobody else is touched
    assert await _post(h, "w-1", ANNA[0], ANNA[1]) == mine[0]  # redelivery still deduplicated
    assert "Kowalska" not in json.dumps(await _stored(h, mine[0]))
    assert len(await h.bus.read_topic(CUSTOMERS.dlq)) == 2  # duplicates were no poison


async def _scrubbed(h: Harness, ids: list[str]) -> bool:
    return all([(await _stored(h, i))["sender"]["value"] == "erased" for i in ids])
