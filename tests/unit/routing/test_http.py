"""The REST API: queues, agents, presence, rules, tickets and agent actions; bad input never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from routing.bootstrap import RoutingService, bootstrap
from sbcontracts.events.common import Channel
from sbkit.auth import Keyring, mint
from sbkit.bus.local import LocalBus
from tests.fakes.served import served
from tests.unit.routing.conftest import attributed, deliver, outbox, settings_for

SCOPES = ["routing:admin", "tickets:read", "tickets:write"]
QUEUE = {"name": "PL delivery", "position": 1, "filters": [{"languages": ["pl"]}], "skills": []}
AGENT = {"name": "Ola", "capacity": 100, "skills": {"delivery": 4}, "languages": {"pl": 5}}


class Api:
    """A client of the routing app with tokens per tenant."""

    def __init__(self, client: httpx.AsyncClient, ring: Keyring, service: RoutingService) -> None:
        self.client, self.ring, self.service = client, ring, service

    async def call(
        self, method: str, url: str, *, tenant: str = "acme", **kw: Any
    ) -> httpx.Response:
        """A request as the tenant's admin/agent."""
        _, token = mint(self.ring, tenant_id=tenant, scopes=SCOPES, ttl_s=600)
        return await self.client.request(
            method, url, headers={"authorization": f"Bearer {token}"}, **kw
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The routing app on SQLite with a local bus, served in-process."""
    service = bootstrap(
        settings_for(tmp_path), bus=LocalBus(":memory:", poll_interval_s=0.01), timers=False
    )
    async with served(service, tmp_path / "keys", "http://routing") as (client, ring):
        yield Api(client, ring, service)


async def setup_case(api: Api) -> str:
    assert (await api.call("POST", "/v1/queues/pl", json=QUEUE)).status_code == 201
    assert (await api.call("POST", "/v1/agents/ola", json=AGENT)).status_code == 201
    online = await api.call("PUT", "/v1/agents/ola/presence", json={"presence": "online"})
    assert online.json()["presence"] == "online"
    await deliver(api.service, attributed("Gdzie jest moja paczka?", channel=Channel.WHATSAPP))
    [ticket] = (await api.call("GET", "/v1/tickets", params={"agent": "ola"})).json()
    return str(ticket["id"])


async def test_reply_emits_agent_replied_and_outbound_on_the_customers_last_channel(
    api: Api,
) -> None:
    ticket_id = await setup_case(api)
    r = await api.call(
        "POST", f"/v1/tickets/{ticket_id}/replies", json={"agent_id": "ola", "text": "Sprawdzam!"}
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    assert [m["direction"] for m in r.json()["messages"]] == ["inbound", "outbound"]
    [replied] = await outbox(api.service, "ticket.agent_replied")
    [out] = await outbox(api.service, "outbound.message")
    assert replied.data.first_response and replied.data.agent_id == "ola"
    assert (out.data.channel, out.data.recipient.value, out.data.ticket_id) == (
        "whatsapp",
        "+48600100200",
        ticket_id,
    )
    assert out.data.in_reply_to and out.data.in_reply_to.startswith("p-")


async def test_resolving_twice_and_replying_to_a_closed_case_conflict(api: Api) -> None:
    ticket_id = await setup_case(api)
    assert (await api.call("POST", f"/v1/tickets/{ticket_id}/resolve")).status_code == 200
    assert (await api.call("POST", f"/v1/tickets/{ticket_id}/resolve")).status_code == 409
    assert (
        await api.call("POST", f"/v1/tickets/{ticket_id}/status", json={"status": "closed"})
    ).status_code == 200
    reply = await api.call(
        "POST", f"/v1/tickets/{ticket_id}/replies", json={"agent_id": "ola", "text": "hi"}
    )
    assert reply.status_code == 409
    assert (await api.call("POST", f"/v1/tickets/{ticket_id}/reopen")).status_code == 409


async def test_other_tenants_and_unknown_objects_are_not_found(api: Api) -> None:
    ticket_id = await setup_case(api)
    for method, url in [
        ("GET", f"/v1/tickets/{ticket_id}"),
        ("GET", "/v1/queues/pl"),
        ("GET", "/v1/agents/ola"),
        ("POST", f"/v1/tickets/{ticket_id}/resolve"),
    ]:
        assert (await api.call(method, url, tenant="other")).status_code == 404, url
    transfer = await api.call(
        "POST", f"/v1/tickets/{ticket_id}/transfer", json={"queue_id": "nope"}
    )
    assert transfer.status_code == 404
    assert (
        await api.call("PUT", "/v1/agents/ghost/presence", json={"presence": "online"})
    ).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "capacity": 0},
        {"name": "x", "capacity": 100, "skills": {"billing": 9}},
        {"name": "x", "capacity": 100, "languages": {"pl": 0}},
    ],
)
async def test_nonsense_capacity_or_skills_is_422(api: Api, body: dict[str, Any]) -> None:
    assert (await api.call("POST", "/v1/agents/x", json=body)).status_code == 422


async def test_bad_queue_config_is_422(api: Api) -> None:
    bad_tz = QUEUE | {"hours": {"tz": "Mars/Olympus"}}
    assert (await api.call("POST", "/v1/queues/q", json=bad_tz)).status_code == 422
    self_fallback = QUEUE | {"fallback_queue": "q"}
    assert (await api.call("POST", "/v1/queues/q", json=self_fallback)).status_code == 422
    assert (await api.call("POST", "/v1/queues/q", json=QUEUE)).status_code == 201
    assert (await api.call("POST", "/v1/queues/q", json=QUEUE)).status_code == 409


async def test_manual_assign_respects_capacity(api: Api) -> None:
    ticket_id = await setup_case(api)
    small = AGENT | {"capacity": 10}
    assert (await api.call("POST", "/v1/agents/bob", json=small)).status_code == 201
    await api.call("PUT", "/v1/agents/bob/presence", json={"presence": "online"})
    r = await api.call("POST", f"/v1/tickets/{ticket_id}/assign", json={"agent_id": "bob"})
    assert r.status_code == 409  # a chat (25 units) does not fit in 10
    assert (await api.call("GET", f"/v1/tickets/{ticket_id}")).json()["agent_id"] == "ola"


async def test_tenant_rules_change_classification(api: Api) -> None:
    rules = {"rules": [{"category": "billing", "pattern": "paczk", "language": "pl"}]}
    assert (await api.call("PUT", "/v1/rules", json=rules)).status_code == 200
    assert (await api.call("GET", "/v1/rules")).json()["rules"][0]["category"] == "billing"
    assert (
        await api.call("PUT", "/v1/rules", json={"rules": [{"category": "x", "pattern": "("}]})
    ).status_code == 422
    await deliver(api.service, attributed("Gdzie jest moja paczka?"))
    [ticket] = (await api.call("GET", "/v1/tickets")).json()
    assert ticket["category"] == "billing"


async def test_notes_transfer_and_history(api: Api) -> None:
    ticket_id = await setup_case(api)
    assert (
        await api.call("POST", "/v1/queues/general", json=QUEUE | {"name": "g", "position": 9})
    ).status_code == 201
    note = await api.call(
        "POST", f"/v1/tickets/{ticket_id}/notes", json={"agent_id": "ola", "text": "VIP"}
    )
    assert note.status_code == 201 and note.json()["messages"][-1]["direction"] == "internal"
    moved = await api.call(
        "POST", f"/v1/tickets/{ticket_id}/transfer", json={"queue_id": "general"}
    )
    assert moved.json()["queue_id"] == "general"
    assert await outbox(api.service, "outbound.message") == []  # notes never reach the customer


async def test_ids_that_could_break_queue_membership_are_422(api: Api) -> None:
    assert (await api.call("POST", "/v1/queues/a|b", json=QUEUE)).status_code == 422
    bad_member = AGENT | {"queues": ["x|y"]}
    assert (await api.call("POST", "/v1/agents/ok", json=bad_member)).status_code == 422


async def test_resolution_and_first_response_are_measured_from_the_same_customer_message(
    api: Api,
) -> None:
    assert (await api.call("POST", "/v1/queues/pl", json=QUEUE)).status_code == 201
    assert (await api.call("POST", "/v1/agents/ola", json=AGENT)).status_code == 201
    await api.call("PUT", "/v1/agents/ola/presence", json={"presence": "online"})
    written = datetime.now(UTC) - timedelta(seconds=30)  # the pipeline took 30 s to route it
    await deliver(
        api.service, attributed("Gdzie jest moja paczka?", channel=Channel.WHATSAPP, at=written)
    )
    [ticket] = (await api.call("GET", "/v1/tickets", params={"agent": "ola"})).json()
    reply = {"agent_id": "ola", "text": "Sprawdzam!", "status": "open"}
    assert (await api.call("POST", f"/v1/tickets/{ticket['id']}/replies", json=reply)).is_success
    assert (await api.call("POST", f"/v1/tickets/{ticket['id']}/resolve")).is_success
    [replied] = await outbox(api.service, "ticket.agent_replied")
    [resolved] = await outbox(api.service, "ticket.resolved")
    assert replied.data.response_ms >= 30_000
    assert resolved.data.resolution_ms >= replied.data.response_ms


async def test_presence_changes_are_published_for_occupancy(api: Api) -> None:
    assert (await api.call("POST", "/v1/agents/ola", json=AGENT)).status_code == 201
    for presence in ("online", "online", "away", "offline"):  # the repeat changes nothing
        r = await api.call("PUT", "/v1/agents/ola/presence", json={"presence": presence})
        assert r.status_code == 200, r.text
    changes = await outbox(api.service, "agent.presence_changed")
    assert [(e.data.previous, e.data.presence) for e in changes] == [
        ("offline", "online"),
        ("online", "away"),
        ("away", "offline"),
    ]
    assert {e.data.agent_id for e in changes} == {"ola"}
