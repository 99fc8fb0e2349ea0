"""Messages become cases: cross-channel join, threading by own Message-IDs, reopen window, auto-reply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from routing.bootstrap import RoutingService
from routing.service_layer import actions, inbound
from sbcontracts.events.common import Channel
from tests.unit.routing.conftest import (
    add_agent,
    add_queue,
    attributed,
    deliver,
    in_ctx,
    outbox,
    tickets,
)

LATE_PL = "Gdzie jest moja paczka? Czekam już tydzień, to skandal!"


async def test_email_then_whatsapp_from_one_customer_is_one_case(routing: RoutingService) -> None:
    await deliver(routing, attributed("Where is my parcel?", channel=Channel.EMAIL))
    await deliver(routing, attributed("Any news about the parcel?", channel=Channel.WHATSAPP))
    rows = await tickets(routing)
    assert len(rows) == 1 and rows[0].channel == "whatsapp"
    assert len(await outbox(routing, "ticket.opened")) == 1
    assert len(await outbox(routing, "ticket.message_added")) == 2


async def test_strangers_reply_quoting_another_customers_message_id_opens_their_own_case(
    routing: RoutingService,
) -> None:
    await deliver(routing, attributed("Where is my parcel?", customer="c1", message_id="<m1@shop>"))
    await deliver(routing, attributed("Re: parcel", customer="c2", in_reply_to="<m1@shop>"))
    rows = await tickets(routing)
    assert sorted(r.customer_id for r in rows) == ["c1", "c2"]


async def test_email_reply_threads_into_the_customers_referenced_case(
    routing: RoutingService,
) -> None:
    await deliver(routing, attributed("Where is my parcel?", message_id="<m1@shop>"))
    await deliver(routing, attributed("Re: parcel, still nothing", in_reply_to="<m1@shop>"))
    assert len(await tickets(routing)) == 1


async def test_resolved_case_reopens_within_window_and_a_new_one_opens_after(
    routing: RoutingService,
) -> None:
    t0 = datetime.now(UTC) - timedelta(days=10)
    first = await in_ctx(
        routing,
        lambda c: inbound.on_message(c, attributed("Where is my parcel?", at=t0).data),
        now=t0,
    )
    assert first is not None
    await in_ctx(routing, lambda c: actions.resolve(c, first), now=t0 + timedelta(hours=1))
    inside = t0 + timedelta(days=2)
    again = await in_ctx(
        routing,
        lambda c: inbound.on_message(c, attributed("Still late!", at=inside).data),
        now=inside,
    )
    assert again == first and (await tickets(routing))[0].cycle == 2
    assert len(await outbox(routing, "ticket.reopened")) == 1
    await in_ctx(routing, lambda c: actions.resolve(c, first), now=inside + timedelta(hours=1))
    later = inside + timedelta(days=4)
    third = await in_ctx(
        routing, lambda c: inbound.on_message(c, attributed("New issue", at=later).data), now=later
    )
    assert third != first and len(await tickets(routing)) == 2


async def test_polish_late_parcel_goes_to_polish_delivery_queue_and_a_polish_agent(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", position=99)
    await add_queue(
        routing,
        "pl-delivery",
        position=1,
        filters=[{"categories": ["delivery_delay"], "languages": ["pl"]}],
    )
    await add_agent(routing, "ru-agent", languages={"ru": 5})
    await add_agent(routing, "pl-agent", languages={"pl": 5})
    await deliver(routing, attributed(LATE_PL))
    [row] = await tickets(routing)
    assert (row.queue_id, row.agent_id, row.category, row.language, row.priority) == (
        "pl-delivery",
        "pl-agent",
        "delivery_delay",
        "pl",
        "urgent",
    )
    [assigned] = await outbox(routing, "ticket.assigned")
    assert (
        assigned.data.eligible_agents == ("pl-agent",) and assigned.data.candidates_considered == 2
    )
    assert assigned.data.reason and assigned.data.policy == "longest_idle"


async def test_after_hours_message_gets_the_queues_auto_reply(routing: RoutingService) -> None:
    closed = {"tz": "Europe/Warsaw", "weekly": {}, "holidays": []}
    await add_queue(routing, "general", hours=closed, auto_reply="Odpowiemy w godzinach pracy.")
    await deliver(routing, attributed(LATE_PL))
    [reply] = await outbox(routing, "outbound.message")
    assert reply.data.kind == "auto_reply" and reply.data.text.startswith("Odpowiemy")
    assert reply.data.recipient.value == "c1@x.pl"


async def test_open_hours_send_no_auto_reply(routing: RoutingService) -> None:
    always = {"tz": "UTC", "weekly": {str(d): [["00:00", "00:00"]] for d in range(7)}}
    await add_queue(routing, "general", hours=always, auto_reply="closed")
    await deliver(routing, attributed(LATE_PL))
    assert await outbox(routing, "outbound.message") == []


async def test_the_same_message_republished_under_a_new_event_id_is_recorded_once(
    routing: RoutingService,
) -> None:
    first = attributed("Where is my parcel?")
    again = first.model_copy(update={"id": "another-event-id"})
    await deliver(routing, first)
    await deliver(routing, again)
    assert len(await outbox(routing, "ticket.message_added")) == 1


async def test_returning_customer_gets_their_last_agent_when_online(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general")
    await add_agent(routing, "a1")
    await add_agent(routing, "a2")
    earlier = datetime.now(UTC) - timedelta(days=30)
    old = await in_ctx(
        routing, lambda c: inbound.on_message(c, attributed("Hi", at=earlier).data), now=earlier
    )
    assert old is not None
    owner = (await tickets(routing))[0].agent_id
    await in_ctx(routing, lambda c: actions.resolve(c, old), now=earlier + timedelta(hours=1))
    await add_agent(routing, "a0-idle-longest", idle_since=earlier - timedelta(days=1))
    await deliver(routing, attributed("New question"))
    new = next(r for r in await tickets(routing) if r.id != old)
    assert new.agent_id == owner
    assigned = (await outbox(routing, "ticket.assigned"))[-1]
    assert assigned.data.reason == "customer's last agent"


async def test_agents_limited_to_other_queues_or_lacking_skills_are_not_chosen(
    routing: RoutingService,
) -> None:
    await add_queue(routing, "general", skills=[{"skill": "parcels", "level": 3}])
    await add_agent(routing, "billing-only", queues=["billing"], skills={"parcels": 5})
    await add_agent(routing, "junior", skills={"parcels": 2})
    await add_agent(routing, "senior", queues=["general"], skills={"parcels": 3})
    await deliver(routing, attributed(LATE_PL))
    assert (await tickets(routing))[0].agent_id == "senior"
