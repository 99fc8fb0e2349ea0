"""customer.erased: the erased person's stored messages lose everything that names them."""

from __future__ import annotations

from ingest.adapters import repository as repo
from ingest.domain.erasure import scrubbed
from sbcontracts.events.crm import CustomerErased
from sbkit.db.uow import UnitOfWork

_CHUNK = 500  # ids per query: an erased heavy user may have thousands of messages


async def on_customer_erased(uow: UnitOfWork, tenant_id: str, data: CustomerErased) -> int:
    """Scrub the messages the event names (crm knows them from the person's timeline); how many
    changed. Only crm can compute the keyed handle hashes, so messages are found by id."""
    ids = sorted(set(data.message_ids))
    changed = 0
    for start in range(0, len(ids), _CHUNK):
        stored = await repo.messages_by_ids(uow.session, tenant_id, ids[start : start + _CHUNK])
        for message_id, payload in stored.items():
            clean = scrubbed(payload)
            if clean != payload:  # a redelivered erasure changes nothing
                await repo.replace_payload(uow.session, tenant_id, message_id, clean)
                changed += 1
    return changed
