"""crm merges in notifier's read model: the merged-away customer's handles, preferences, opt-outs and
cases move to the survivor; an undo restores both (STOPs sent while merged keep holding)."""

from __future__ import annotations

from typing import Any

from notifier.adapters.notifications import Notifications
from notifier.adapters.repository import Repository
from notifier.bootstrap import NotifierService
from notifier.domain.policy import Customer
from sbcontracts.envelope import CloudEvent
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.crm import (
    Consent,
    CustomerCreated,
    CustomerErased,
    CustomerMerged,
    CustomerUnmerged,
    CustomerUpdated,
    Provenance,
    ProvenanceKind,
)
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.events.routing import TicketOpened
from tests.unit.notifier.conftest import (
    START,
    TENANT,
    FakeSender,
    deliver,
    event_of,
    notifications,
    order,
    outbox,
    scan,
)

EMAIL = Handle(kind=HandleKind.EMAIL, value="anna@x.pl")
PHONE = Handle(kind=HandleKind.PHONE, value="+48600100200")
PROV = Provenance(kind=ProvenanceKind.AGENT, ref="agent-1")


def _two_customers() -> list[CloudEvent[Any]]:
    """c-1 knows only Anna's email; c-2 her phone, prefers SMS and withdrew WhatsApp consent."""
    c1 = CustomerCreated(customer_id="c-1", handles=(EMAIL,), provenance=PROV, created_at=START)
    c2 = CustomerCreated(customer_id="c-2", handles=(PHONE,), provenance=PROV, created_at=START)
    prefs = CustomerUpdated(
        customer_id="c-2",
        fields=("preferred_channel", "language", "consent.whatsapp.service"),
        preferred_channel="sms",
        language="ro",
        consents=(Consent(channel="whatsapp", purpose="service", granted=False),),
        updated_at=START,
    )
    return [event_of(c1), event_of(c2), event_of(prefs)]


MERGED = event_of(
    CustomerMerged(
        merge_id="m-1", customer_id="c-1", survivor_id="c-1", merged_id="c-2",
        provenance=PROV, merged_at=START,
    )
)  # fmt: skip
UNMERGED = event_of(
    CustomerUnmerged(
        merge_id="m-1", customer_id="c-1", survivor_id="c-1", restored_id="c-2",
        moved_back=(PHONE,), provenance=PROV, unmerged_at=START,
    )
)  # fmt: skip


async def _customer(n: NotifierService, customer_id: str) -> Customer:
    async with n.runtime.uow() as uow:
        found = await Repository(uow.session, TENANT).customer(customer_id)
    assert found is not None
    return found


async def _alert(n: NotifierService, shipment: int = 1) -> None:
    await deliver(n, order(n=shipment))
    await deliver(n, scan(START, n=shipment, carrier_code="DY", is_delay=True))
    await n.tick()


async def test_merge_moves_handles_preferences_and_opt_outs_to_the_survivor(
    notifier: NotifierService, sender: FakeSender
) -> None:
    for e in [*_two_customers(), MERGED, MERGED]:  # a redelivered merge changes nothing more
        await deliver(notifier, e)
    c1 = await _customer(notifier, "c-1")
    assert c1.handles == {"email": "anna@x.pl", "phone": "+48600100200"}
    assert (c1.preferred_channel, c1.language, c1.opted_out) == ("sms", "ro", {"whatsapp"})
    await _alert(notifier)
    assert [(m.channel, m.recipient) for m in sender.sent] == [("sms", "+48600100200")]
    assert [r.customer_id for r in await notifications(notifier)] == ["c-1"]


async def test_undo_restores_both_customers(notifier: NotifierService, sender: FakeSender) -> None:
    for e in [*_two_customers(), MERGED, UNMERGED, UNMERGED]:
        await deliver(notifier, e)
    c1, c2 = await _customer(notifier, "c-1"), await _customer(notifier, "c-2")
    assert (c1.handles, c1.preferred_channel, c1.language, c1.opted_out) == (
        {"email": "anna@x.pl"}, None, None, frozenset()
    )  # fmt: skip
    assert (c2.handles, c2.preferred_channel, c2.opted_out) == (
        {"phone": "+48600100200"}, "sms", {"whatsapp"}
    )  # fmt: skip
    await _alert(notifier)
    assert [(m.channel, m.recipient) for m in sender.sent] == [("email", "anna@x.pl")]


async def test_a_stop_while_merged_still_holds_for_both_after_the_undo(
    notifier: NotifierService,
) -> None:
    stop = MessageReceived(
        message_id="m-9", channel=Channel.SMS, provider="t", provider_message_id="p-9",
        received_at=START, sender=PHONE, text="STOP", body="STOP",
    )  # fmt: skip
    for e in [*_two_customers(), MERGED, event_of(stop), UNMERGED]:
        await deliver(notifier, e)
    assert (await _customer(notifier, "c-1")).opted_out == {"sms"}
    assert (await _customer(notifier, "c-2")).opted_out == {"whatsapp", "sms"}


async def test_a_preference_changed_after_the_merge_survives_the_undo(
    notifier: NotifierService,
) -> None:
    later = CustomerUpdated(
        customer_id="c-1", fields=("preferred_channel",), preferred_channel="email",
        updated_at=START,
    )  # fmt: skip
    for e in [*_two_customers(), MERGED, event_of(later), UNMERGED]:
        await deliver(notifier, e)
    c1 = await _customer(notifier, "c-1")
    assert (c1.preferred_channel, c1.language) == ("email", None)


async def test_the_merged_customers_open_case_suppresses_until_the_undo(
    notifier: NotifierService, sender: FakeSender
) -> None:
    opened = TicketOpened(ticket_id="t-2", customer_id="c-2", occurred_at=START)
    for e in [*_two_customers(), event_of(opened), MERGED]:
        await deliver(notifier, e)
    await _alert(notifier, shipment=1)
    (ev,) = await outbox(notifier, "notification.suppressed")
    assert (ev.data.reason, ev.data.note.ticket_id) == ("open_case", "t-2")
    await deliver(notifier, UNMERGED)
    await _alert(notifier, shipment=2)
    assert [m.channel for m in sender.sent] == ["email"]


async def test_an_undo_of_a_merge_never_seen_links_crms_handles_back(
    notifier: NotifierService,
) -> None:
    both = CustomerCreated(
        customer_id="c-1", handles=(EMAIL, PHONE), provenance=PROV, created_at=START
    )  # as if the merge predates this read model
    await deliver(notifier, event_of(both))
    await deliver(notifier, UNMERGED)
    assert (await _customer(notifier, "c-1")).handles == {"email": "anna@x.pl"}
    assert (await _customer(notifier, "c-2")).handles == {"phone": "+48600100200"}


async def test_erasure_forgets_the_merge_record(notifier: NotifierService) -> None:
    for e in [*_two_customers(), MERGED]:
        await deliver(notifier, e)
    erased = CustomerErased(customer_id="c-1", erased_ids=("c-2",), erased_at=START)
    await deliver(notifier, event_of(erased))
    async with notifier.runtime.uow() as uow:
        assert await Repository(uow.session, TENANT).merge("m-1") is None


async def test_the_frequency_cap_counts_what_the_merged_away_customer_was_sent(
    notifier: NotifierService, sender: FakeSender
) -> None:
    async with notifier.runtime.uow() as uow:
        await Notifications(uow.session, TENANT).put_policy({"cap": 1})
        await uow.commit()
    for e in _two_customers():
        await deliver(notifier, e)
    await _alert(notifier, shipment=1)  # sent to c-1 by email
    c1_into_c2 = CustomerMerged(
        merge_id="m-2", customer_id="c-2", survivor_id="c-2", merged_id="c-1",
        provenance=PROV, merged_at=START,
    )  # fmt: skip
    await deliver(notifier, event_of(c1_into_c2))
    await _alert(notifier, shipment=2)  # Anna again, now as c-2: the cap holds
    assert len(sender.sent) == 1
    rows = await notifications(notifier)
    assert [(r.customer_id, r.status, r.reason) for r in rows][-1] == (
        "c-2", "deferred", "frequency_cap"
    )  # fmt: skip
