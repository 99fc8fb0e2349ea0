"""Attributed messages carry the customer's recent orders (routing names the order a case is about)."""

from __future__ import annotations

from crm.bootstrap import CrmService
from sbcontracts.catalog import encode
from sbcontracts.topics import MESSAGES
from sbkit.bus.ports import Record
from tests.unit.crm.conftest import deliver, message, order, outbox_events


async def _attributed(crm: CrmService) -> list[tuple[str, ...]]:
    return [
        e.data.recent_order_ids
        for e in await outbox_events(crm)
        if e.type == "com.switchboard.message.attributed"
    ]


async def test_attributed_messages_carry_the_customers_recent_orders_newest_first(
    crm: CrmService,
) -> None:
    await deliver(crm, order("10045", email="anna@x.pl", phone=None))
    await deliver(crm, order("10050", email="anna@x.pl", phone=None))
    await deliver(crm, message("anna@x.pl"))  # one message per transaction
    [sub] = [s for s in crm.runtime._subscriptions if MESSAGES.name in s.topics]
    assert sub.batch_handler is not None
    batch = [message("anna@x.pl", minutes=1), message("bob@x.pl", minutes=1)]
    await sub.batch_handler(
        [Record(MESSAGES.name, 0, n, None, encode(e)) for n, e in enumerate(batch)]
    )
    assert await _attributed(crm) == [("10050", "10045"), ("10050", "10045"), ()]
