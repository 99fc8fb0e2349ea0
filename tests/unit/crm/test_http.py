"""The HTTP API: card, search, timeline, links, merges and undo, bad input, tenants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crm.adapters import orm
from sbcontracts.envelope import new_event
from sbcontracts.events.common import Channel, HandleKind
from sbcontracts.events.ingest import ShipmentEventReceived, ShipmentStatus
from tests.unit.crm.conftest import T0, TENANT, Api, count, deliver, message, order


async def _create(api: Api, **body: Any) -> str:
    r = await api.call("POST", "/v1/customers", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_created_customer_card_shows_identities_preferences_and_consents(api: Api) -> None:
    body = {
        "email": "Anna@Example.PL",
        "phone": "+48 601 234 567",
        "name": "Anna",
        "language": "pl",
        "timezone": "Europe/Warsaw",
        "preferred_channel": "whatsapp",
        "consents": [{"channel": "whatsapp", "purpose": "marketing", "granted": False}],
    }
    cid = await _create(api, **body)
    card = (await api.call("GET", f"/v1/customers/{cid}")).json()
    assert {(i["kind"], i["value"]) for i in card["identities"]} == {
        ("email", "anna@example.pl"),
        ("phone", "+48601234567"),
    }
    assert card["language"] == "pl" and card["timezone"] == "Europe/Warsaw"
    assert card["attributes"]["name"]["source"] == "agent"
    assert card["consents"][0]["granted"] is False


async def test_invalid_email_or_phone_is_a_422_naming_the_field(api: Api) -> None:
    r = await api.call("POST", "/v1/customers", json={"email": "not-an-email"})
    assert r.status_code == 422 and r.json()["field"] == "email"
    r = await api.call("POST", "/v1/customers", json={"phone": "12"})
    assert r.status_code == 422 and r.json()["field"] == "phone"
    r = await api.call("GET", "/v1/customers", params={"phone": "abc"})
    assert r.status_code == 422 and r.json()["field"] == "phone"
    assert await count(api.service, orm.customers) == 0


async def test_another_tenants_customer_is_not_found(api: Api) -> None:
    cid = await _create(api, email="anna@example.pl")
    assert (await api.call("GET", f"/v1/customers/{cid}", tenant="other")).status_code == 404
    r = await api.call("PATCH", f"/v1/customers/{cid}", tenant="other", json={"tier": "gold"})
    assert r.status_code == 404
    assert (await api.call("GET", "/v1/customers/nope")).status_code == 404


async def test_read_scope_cannot_write(api: Api) -> None:
    headers = api.auth(scopes=("customers:read",))
    r = await api.client.post("/v1/customers", json={"email": "a@b.pl"}, headers=headers)
    assert r.status_code == 403


async def test_search_by_email_phone_handle_and_name(api: Api) -> None:
    cid = await _create(api, email="anna@example.pl", phone="+48601234567", name="Anna Kowalska")
    for params in (
        {"email": "ANNA@example.pl"},
        {"phone": "+48 601-234-567"},
        {"handle": "email:anna@example.pl"},
        {"q": "kowal"},
    ):
        found = (await api.call("GET", "/v1/customers", params=params)).json()
        assert [c["id"] for c in found] == [cid], params
    assert (await api.call("GET", "/v1/customers", params={"q": "zz%"})).json() == []


async def test_timeline_pages_newest_first_with_a_cursor(api: Api) -> None:
    for minute in range(5):
        await deliver(api.service, message("anna@example.pl", minutes=minute))
    cid = (await api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})).json()[0][
        "id"
    ]
    first = (await api.call("GET", f"/v1/customers/{cid}/timeline", params={"limit": 3})).json()
    second = (
        await api.call(
            "GET",
            f"/v1/customers/{cid}/timeline",
            params={"limit": 3, "cursor": first["next_cursor"]},
        )
    ).json()
    refs = [e["ref"] for e in first["entries"] + second["entries"]]
    assert refs == [f"m-anna@example.pl-{m}" for m in (4, 3, 2, 1, 0)]
    assert second["next_cursor"] is None
    bad = await api.call("GET", f"/v1/customers/{cid}/timeline", params={"cursor": "!!"})
    assert bad.status_code == 422


async def test_merge_then_undo_restores_both_cards_exactly(api: Api) -> None:
    await deliver(api.service, message("anna@example.pl", name="Anna"))
    await deliver(api.service, message("+48601234567", kind=HandleKind.PHONE, channel=Channel.SMS))
    a = (await api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})).json()[0][
        "id"
    ]
    b = (await api.call("GET", "/v1/customers", params={"phone": "+48601234567"})).json()[0]["id"]
    before = [(await api.call("GET", f"/v1/customers/{x}")).json() for x in (a, b)]
    merged = await api.call("POST", f"/v1/customers/{a}/merge", json={"other_id": b})
    assert merged.status_code == 200, merged.text
    via_old = (await api.call("GET", f"/v1/customers/{b}")).json()
    assert via_old["id"] == a and via_old["requested_id"] == b and len(via_old["identities"]) == 2
    again = await api.call("POST", f"/v1/customers/{a}/merge", json={"other_id": b})
    assert again.status_code == 409
    itself = await api.call("POST", f"/v1/customers/{a}/merge", json={"other_id": a})
    assert itself.status_code == 409
    mid = merged.json()["id"]
    assert (await api.call("GET", f"/v1/merges/{mid}")).json()["provenance"]["kind"] == "agent"
    assert (await api.call("POST", f"/v1/merges/{mid}/undo")).status_code == 200
    after = [(await api.call("GET", f"/v1/customers/{x}")).json() for x in (a, b)]
    for old, new in zip(before, after, strict=True):
        old.pop("tenure_days"), new.pop("tenure_days")
        assert old == new
    assert (await api.call("POST", f"/v1/merges/{mid}/undo")).status_code == 409


async def test_link_of_a_handle_held_by_another_customer_merges_into_the_target(api: Api) -> None:
    a = await _create(api, email="anna@example.pl")
    b = await _create(api, phone="+48601234567")
    r = await api.call("POST", f"/v1/customers/{a}/links", json={"phone": "+48601234567"})
    assert r.status_code == 200 and r.json()["customer_id"] == a and r.json()["merge_id"]
    assert (await api.call("GET", f"/v1/customers/{b}")).json()["id"] == a
    r = await api.call("POST", f"/v1/customers/{a}/links", json={"email": "x@"})
    assert r.status_code == 422 and r.json()["field"] == "email"


async def test_order_shows_on_the_card_with_its_latest_shipment(api: Api) -> None:
    await deliver(api.service, order("o1", email="anna@example.pl", phone=None, name="Anna"))
    await deliver(api.service, shipment("o1", "s1", ShipmentStatus.IN_TRANSIT, hours=30))
    await deliver(api.service, shipment("o1", "s1", ShipmentStatus.OUT_FOR_DELIVERY, hours=40))
    await deliver(api.service, shipment("o1", "s1", ShipmentStatus.IN_TRANSIT, hours=35))  # late
    cid = (await api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})).json()[0][
        "id"
    ]
    card = (await api.call("GET", f"/v1/customers/{cid}")).json()
    assert card["orders"][0]["order_id"] == "o1" and card["name"] == "Anna"
    assert card["attributes"]["name"]["source"] == "order"
    assert card["orders"][0]["latest_shipment_status"] == "out_for_delivery"
    kinds = [
        e["kind"]
        for e in (await api.call("GET", f"/v1/customers/{cid}/timeline")).json()["entries"]
    ]
    assert kinds == ["shipment", "shipment", "shipment", "order"]


async def test_merge_keeps_both_names_with_their_provenance(api: Api) -> None:
    await deliver(
        api.service,
        message("+48601234567", kind=HandleKind.PHONE, channel=Channel.WHATSAPP, name="Ania"),
    )
    await deliver(
        api.service, order("o1", email="anna@example.pl", phone=None, name="Anna Kowalska")
    )
    await deliver(api.service, order("o2", email="anna@example.pl", phone="+48601234567"))
    cid = (await api.call("GET", "/v1/customers", params={"email": "anna@example.pl"})).json()[0][
        "id"
    ]
    name = (await api.call("GET", f"/v1/customers/{cid}")).json()["attributes"]["name"]
    values = {(name["value"], name["source"])} | {
        (a["value"], a["source"]) for a in name["alternatives"]
    }
    assert values == {("Ania", "whatsapp_profile"), ("Anna Kowalska", "order")}


def shipment(order_id: str, shipment_id: str, status: ShipmentStatus, *, hours: int) -> Any:
    """A carrier scan of an order's parcel."""
    data = ShipmentEventReceived(
        shipment_id=shipment_id,
        order_id=order_id,
        carrier="dpd",
        tracking_number="T1",
        status=status,
        occurred_at=T0 + timedelta(hours=hours),
    )
    return new_event(data, tenant_id=TENANT, source="ingest")


async def test_undo_of_an_older_merge_is_refused_until_the_later_one_is_undone(api: Api) -> None:
    a, b, c = [await _create(api, email=f"{n}@example.pl") for n in "abc"]
    first = (await api.call("POST", f"/v1/customers/{a}/merge", json={"other_id": b})).json()["id"]
    second = (await api.call("POST", f"/v1/customers/{c}/merge", json={"other_id": a})).json()["id"]
    refused = await api.call("POST", f"/v1/merges/{first}/undo")
    assert refused.status_code == 409 and "undo that first" in refused.json()["detail"]
    assert (await api.call("GET", f"/v1/merges/{first}", tenant="other")).status_code == 404
    assert (await api.call("POST", f"/v1/merges/{second}/undo")).status_code == 200
    assert (await api.call("POST", f"/v1/merges/{first}/undo")).status_code == 200
    for cid in (a, b, c):
        assert (await api.call("GET", f"/v1/customers/{cid}")).json()["id"] == cid


async def test_openapi_documents_every_route_with_its_problems(api: Api) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    merge = doc["paths"]["/v1/customers/{customer_id}/merge"]["post"]["responses"]
    assert {"200", "404", "409", "422"} <= set(merge)
    assert "/v1/merges/{merge_id}/undo" in doc["paths"]
