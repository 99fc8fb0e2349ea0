"""Service consent from crm's customer.updated: a withdrawal skips the channel, a re-grant restores it."""

from __future__ import annotations

from datetime import timedelta

from notifier.adapters.repository import Repository
from notifier.bootstrap import NotifierService
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.crm import Consent, CustomerUpdated
from sbcontracts.events.ingest import MessageReceived
from tests.unit.notifier.conftest import (
    START,
    TENANT,
    FakeSender,
    customer,
    deliver,
    event_of,
    order,
    scan,
)


def consent(channel: str, granted: bool, *, changed: bool = True) -> CustomerUpdated:
    """crm's event after an agent recorded service consent (`changed=False`: only carried along)."""
    return CustomerUpdated(
        customer_id="c-1",
        fields=(f"consent.{channel}.service",) if changed else ("consent.email.marketing",),
        consents=(
            Consent(channel=channel, purpose="service", granted=granted, updated_at=START),
            Consent(channel="email", purpose="marketing", granted=False, updated_at=START),
        ),
        updated_at=START,
    )


async def _alert_channels(
    n: NotifierService, sender: FakeSender, *updates: CustomerUpdated
) -> list[str]:
    for e in customer():
        await deliver(n, e)
    for u in updates:
        await deliver(n, event_of(u))
    await deliver(n, order())
    await deliver(n, scan(START, carrier_code="DY"))
    await n.tick()
    return [m.channel for m in sender.sent]


async def test_withdrawn_whatsapp_service_consent_sends_on_the_next_channel(
    notifier: NotifierService, sender: FakeSender
) -> None:
    assert await _alert_channels(notifier, sender, consent("whatsapp", False)) == ["sms"]


async def test_regranted_whatsapp_service_consent_restores_whatsapp(
    notifier: NotifierService, sender: FakeSender
) -> None:
    updates = (consent("whatsapp", False), consent("whatsapp", True))
    assert await _alert_channels(notifier, sender, *updates) == ["whatsapp"]


async def test_grant_after_a_stop_reenables_but_a_resent_old_grant_does_not(
    notifier: NotifierService, sender: FakeSender
) -> None:
    for e in customer():
        await deliver(notifier, e)
    stop = MessageReceived(
        message_id="m-1", channel=Channel.WHATSAPP, provider="t", provider_message_id="p-1",
        received_at=START, sender=Handle(kind=HandleKind.PHONE, value="+48600100200"),
        text="STOP", body="STOP",
    )  # fmt: skip
    await deliver(notifier, event_of(stop))
    await deliver(notifier, event_of(consent("whatsapp", True, changed=False)))
    assert (await _repo_opted_out(notifier)) == {"whatsapp"}
    await deliver(notifier, event_of(consent("whatsapp", True)))
    assert (await _repo_opted_out(notifier)) == set()


async def test_marketing_consent_and_no_information_leave_channels_allowed(
    notifier: NotifierService, sender: FakeSender
) -> None:
    marketing = CustomerUpdated(
        customer_id="c-1",
        fields=("consent.whatsapp.marketing",),
        consents=(Consent(channel="whatsapp", purpose="marketing", granted=False),),
        updated_at=START + timedelta(minutes=1),
    )
    assert await _alert_channels(notifier, sender, marketing) == ["whatsapp"]


async def _repo_opted_out(n: NotifierService) -> set[str]:
    async with n.runtime.uow() as uow:
        c = await Repository(uow.session, TENANT).customer("c-1")
    assert c is not None
    return set(c.opted_out)
