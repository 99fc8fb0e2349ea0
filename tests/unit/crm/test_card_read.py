"""The card is read in one statement, with every part right (also through a chain of merges)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from crm.bootstrap import CrmService
from sbcontracts.events.ingest import ShipmentStatus
from tests.unit.crm.conftest import Api, deliver, message, order
from tests.unit.crm.test_activity import classified, opened
from tests.unit.crm.test_http import shipment


@contextmanager
def statements(service: CrmService) -> Iterator[list[str]]:
    """The SQL statements the service's engine runs inside the block (not BEGIN/COMMIT, not
    the outbox relay's polls, which run concurrently)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        relay = "outbox" in sql or "pg_try_advisory" in sql
        if not relay and not sql.lstrip().upper().startswith(("BEGIN", "COMMIT")):
            seen.append(sql)

    engine = service.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _id(api: Api, email: str) -> str:
    found = await api.call("GET", "/v1/customers", params={"email": email})
    return str(found.json()[0]["id"])


async def card_of_a_merge_chain(api: Api, topics: dict[str, str] | None = None) -> None:
    """c is merged into b, b into a; every part of a's card, asked for by c's id, in one query.
    `topics` maps topic names the service consumes under another name."""

    async def send(e: Any) -> None:
        await deliver(api.service, e, (topics or {}).get(e.data.topic, e.data.topic))

    await send(order("o1", email="a@example.pl", phone=None, name="Anna"))
    await send(order("o2", email="a@example.pl", phone=None))
    await send(shipment("o1", "s1", ShipmentStatus.IN_TRANSIT, hours=30))
    await send(shipment("o1", "s1", ShipmentStatus.DELIVERED, hours=50))
    await send(message("b@example.pl", minutes=5))
    await send(message("c@example.pl", minutes=9, name="Ania"))
    a, b, c = [await _id(api, f"{n}@example.pl") for n in "abc"]
    await send(opened(c, "t-c"))
    await send(classified(c, "t-c"))
    consent = {"consents": [{"channel": "sms", "purpose": "marketing", "granted": False}]}
    assert (await api.call("PATCH", f"/v1/customers/{a}", json=consent)).status_code == 200
    assert (await api.call("POST", f"/v1/customers/{b}/merge", json={"other_id": c})).is_success
    assert (await api.call("POST", f"/v1/customers/{a}/merge", json={"other_id": b})).is_success

    with statements(api.service) as sql:
        r = await api.call("GET", f"/v1/customers/{c}")
    assert r.status_code == 200, r.text
    assert len(sql) == 1, sql  # identities, attributes, consents, orders, tickets, ... at once
    card = r.json()
    assert (card["id"], card["requested_id"]) == (a, c)
    assert sorted(card["merged_ids"]) == sorted([b, c])
    assert [i["value"] for i in card["identities"]] == [
        "a@example.pl",
        "b@example.pl",
        "c@example.pl",
    ]
    assert card["name"] == "Ania" and card["attributes"]["name"]["alternatives"][0]["value"] == (
        "Anna"
    )
    assert [(x["channel"], x["purpose"], x["granted"]) for x in card["consents"]] == [
        ("sms", "marketing", False)
    ]
    assert [o["order_id"] for o in card["orders"]] == ["o2", "o1"]  # same time: newer row first
    shipped = next(o for o in card["orders"] if o["order_id"] == "o1")
    assert shipped["latest_shipment_status"] == "delivered"
    assert [t["ticket_id"] for t in card["open_tickets"]] == ["t-c"]
    assert card["last_contact"]["summary"] == "hello from c@example.pl"
    assert card["last_contact"]["reason"] == "delivery_delay"


async def test_card_of_a_merge_chain_is_one_query(api: Api) -> None:
    await card_of_a_merge_chain(api)


async def test_unknown_or_erased_card_is_a_404(api: Api) -> None:
    with statements(api.service) as sql:
        assert (await api.call("GET", "/v1/customers/nobody")).status_code == 404
    assert len(sql) == 1
    await deliver(api.service, message("gone@example.pl"))
    cid = await _id(api, "gone@example.pl")
    assert (await api.call("DELETE", f"/v1/customers/{cid}")).status_code == 200
    assert (await api.call("GET", f"/v1/customers/{cid}")).status_code == 404
