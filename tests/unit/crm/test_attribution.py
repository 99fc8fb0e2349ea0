"""Messages are attributed to one customer per handle; orders link handles and merge customers."""

from __future__ import annotations

from crm.adapters import orm
from crm.bootstrap import CrmService
from sbcontracts.events.common import Channel, HandleKind
from tests.unit.crm.conftest import (
    count,
    deliver,
    live_customers,
    message,
    order,
    outbox_events,
)


async def test_first_message_creates_a_customer_and_emits_attributed(crm: CrmService) -> None:
    await deliver(crm, message("Anna@Example.pl", name="Anna"))
    assert await live_customers(crm) == 1
    types = [e.type for e in await outbox_events(crm)]
    assert types == ["com.switchboard.customer.created", "com.switchboard.message.attributed"]
    attributed = (await outbox_events(crm))[-1].data
    assert attributed.is_new_customer and attributed.message.sender.value == "Anna@Example.pl"


async def test_messages_from_a_known_handle_attach_to_the_same_customer(crm: CrmService) -> None:
    await deliver(crm, message("anna@example.pl"))
    await deliver(crm, message("ANNA@example.pl", minutes=5))
    assert await live_customers(crm) == 1
    assert await count(crm, orm.timeline) == 2
    attributed = [e.data for e in await outbox_events(crm) if e.type.endswith("attributed")]
    assert [a.is_new_customer for a in attributed] == [True, False]
    assert attributed[0].customer_id == attributed[1].customer_id


async def test_sms_and_whatsapp_share_the_phone_handle(crm: CrmService) -> None:
    await deliver(crm, message("+48601234567", kind=HandleKind.PHONE, channel=Channel.SMS))
    await deliver(
        crm, message("+48601234567", kind=HandleKind.PHONE, channel=Channel.WHATSAPP, minutes=1)
    )
    assert await live_customers(crm) == 1


async def test_redelivered_message_adds_no_timeline_entry(crm: CrmService) -> None:
    event = message("anna@example.pl")
    await deliver(crm, event)
    await deliver(crm, event)
    assert await count(crm, orm.timeline) == 1
    assert len(await outbox_events(crm)) == 2


async def test_order_naming_email_and_phone_merges_their_customers(crm: CrmService) -> None:
    await deliver(crm, message("anna@example.pl"))
    await deliver(crm, message("+48601234567", kind=HandleKind.PHONE, channel=Channel.SMS))
    assert await live_customers(crm) == 2
    await deliver(crm, order("10045", email="anna@example.pl", phone="+48 601 234 567"))
    assert await live_customers(crm) == 1
    assert await count(crm, orm.merges) == 1
    merged = [e.data for e in await outbox_events(crm) if e.type.endswith("customer.merged")]
    assert merged[0].provenance.kind == "order" and merged[0].provenance.ref == "10045"
    assert await count(crm, orm.timeline) == 3


async def test_order_with_an_invalid_phone_still_links_the_email(crm: CrmService) -> None:
    await deliver(crm, order("1", email="anna@example.pl", phone="not-a-phone", name="Anna K"))
    await deliver(crm, message("anna@example.pl"))
    assert await live_customers(crm) == 1
    assert await count(crm, orm.identities) == 1


async def test_order_details_update_the_card_and_emit_customer_updated(crm: CrmService) -> None:
    placed = order("o1", email="anna@example.pl", phone=None, name="Anna")
    await deliver(crm, placed)
    await deliver(crm, order("o2", email="anna@example.pl", phone=None, name="Anna"))
    updated = [e.data for e in await outbox_events(crm) if e.type.endswith("customer.updated")]
    assert [u.fields for u in updated] == [("name",)]


async def test_survey_from_an_unknown_respondent_creates_nobody(crm: CrmService) -> None:
    from tests.unit.crm.test_consumers import survey

    await deliver(crm, survey("stranger@example.pl"))
    assert await count(crm, orm.customers) == 0 and await count(crm, orm.timeline) == 0
    await deliver(crm, message("anna@example.pl"))
    await deliver(crm, survey("anna@example.pl", "r2"))
    assert await count(crm, orm.timeline, kind="survey") == 1
