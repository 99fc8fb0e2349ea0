"""customer.updated carries the customer's current consents whenever consents change."""

from __future__ import annotations

from typing import Any

from sbcontracts.catalog import decode
from sbcontracts.topics import CUSTOMERS
from sbkit.bus.local import LocalBus
from tests.unit.crm.conftest import Api, eventually


async def _updates(api: Api, n: int) -> list[Any]:
    """The customer.updated events relayed to the bus, once there are n of them."""
    bus = api.service.runtime.bus
    assert isinstance(bus, LocalBus)

    def updates() -> list[Any]:
        events = [decode(r.value) for r in bus.read_all(CUSTOMERS.name)]
        return [e.data for e in events if e.type == "com.switchboard.customer.updated"]

    async def relayed() -> bool:
        return len(updates()) >= n

    await eventually(relayed)
    return updates()


async def test_consent_change_emits_the_current_consents(api: Api) -> None:
    body = {
        "phone": "+48 601 234 567",
        "consents": [{"channel": "email", "purpose": "marketing", "granted": True}],
    }
    r = await api.call("POST", "/v1/customers", json=body)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    withdraw = {"consents": [{"channel": "whatsapp", "purpose": "service", "granted": False}]}
    r = await api.call("PATCH", f"/v1/customers/{cid}", json=withdraw)
    assert r.status_code == 200, r.text

    last = (await _updates(api, 2))[-1]
    assert "consent.whatsapp.service" in last.fields
    assert {(c.channel, c.purpose, c.granted) for c in last.consents} == {
        ("email", "marketing", True),
        ("whatsapp", "service", False),
    }
    assert all(c.updated_at is not None and c.updated_at.tzinfo for c in last.consents)

    regrant = {"consents": [{"channel": "whatsapp", "purpose": "service", "granted": True}]}
    await api.call("PATCH", f"/v1/customers/{cid}", json=regrant)
    last = (await _updates(api, 3))[-1]
    assert {(c.channel, c.purpose, c.granted) for c in last.consents} == {
        ("email", "marketing", True),
        ("whatsapp", "service", True),
    }


async def test_update_without_a_consent_change_carries_no_consents(api: Api) -> None:
    r = await api.call("POST", "/v1/customers", json={"email": "a@x.pl"})
    cid = r.json()["id"]
    await api.call("PATCH", f"/v1/customers/{cid}", json={"language": "pl"})
    last = (await _updates(api, 2))[-1]
    assert last.fields == ("language",) and last.consents == ()
