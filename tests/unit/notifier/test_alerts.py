"""End-to-end through consumers and timers: each lateness rule, dedupe, quiet hours, cases, STOP, fallback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from notifier.adapters.notifications import Notifications
from notifier.bootstrap import NotifierService, bootstrap
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.ingest import MessageReceived
from sbcontracts.events.routing import TicketOpened
from sbkit.bus.local import LocalBus
from tests.unit.notifier.conftest import (
    START,
    TENANT,
    Clock,
    FakeSender,
    customer,
    deliver,
    event_of,
    notifications,
    order,
    outbox,
    scan,
    settings_for,
)


async def _known_customer(n: NotifierService, preferred: str = "whatsapp") -> None:
    for e in customer(preferred):
        await deliver(n, e)
    await deliver(n, order())


async def test_stall_fires_by_timer_once_on_preferred_channel_in_customer_language(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    await deliver(notifier, scan(START - timedelta(hours=1)))
    clock.advance(timedelta(hours=46))
    assert await notifier.tick() == 0
    clock.advance(timedelta(hours=2))
    await notifier.tick()
    await notifier.tick()
    assert [(m.channel, m.recipient) for m in sender.sent] == [("whatsapp", "+48600100200")]
    assert "задерживается" in sender.sent[0].text and "o-1" in sender.sent[0].text
    rows = await notifications(notifier)
    assert [(r.status, r.delay_reason, r.customer_id) for r in rows] == [("sent", "stalled", "c-1")]
    assert len(await outbox(notifier, "notification.sent")) == 1


async def test_resent_history_and_duplicates_alert_exactly_once(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    history = [
        scan(START - timedelta(hours=5)),
        scan(START - timedelta(hours=3), carrier_code="WX", is_delay=True),
        scan(START - timedelta(hours=2)),
    ]
    for e in [*history, *reversed(history), history[1]]:
        await deliver(notifier, e)
    resent = [
        scan(e.data.occurred_at, e.data.status.value, carrier_code=e.data.carrier_code)
        for e in history
    ]
    for e in resent:
        await deliver(notifier, e)
    await notifier.tick()
    assert len(sender.sent) == 1 and len(await notifications(notifier)) == 1


async def test_estimate_past_promise_alerts_and_worse_estimate_by_margin_alerts_again(
    notifier: NotifierService, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    await deliver(notifier, scan(START, estimate_to=START + timedelta(days=5)))
    await deliver(
        notifier, scan(START + timedelta(minutes=5), estimate_to=START + timedelta(days=5, hours=2))
    )
    await deliver(
        notifier, scan(START + timedelta(minutes=9), estimate_to=START + timedelta(days=6))
    )
    await notifier.tick()
    rows = await notifications(notifier)
    assert [r.delay_reason for r in rows] == ["estimate_after_promise", "estimate_worsened"]


async def test_missed_dispatch_cutoff_fires_without_any_scan(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    for e in customer():
        await deliver(notifier, e)
    await deliver(notifier, order(dispatch_by=START + timedelta(hours=2)))
    clock.advance(timedelta(hours=3))
    await notifier.tick()
    assert [r.delay_reason for r in await notifications(notifier)] == ["missed_dispatch_cutoff"]


async def test_cutoff_is_cancelled_by_a_dispatch_scan(
    notifier: NotifierService, clock: Clock
) -> None:
    await deliver(notifier, order(dispatch_by=START + timedelta(hours=2)))
    await deliver(notifier, scan(START + timedelta(hours=1)))
    clock.advance(timedelta(hours=3))
    await notifier.tick()
    assert await notifications(notifier) == []


async def test_quiet_hours_defer_and_send_in_the_morning(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    clock.now = START.replace(hour=22)  # 23:00 in Warsaw
    await deliver(notifier, scan(clock.now - timedelta(minutes=1), carrier_code="DY"))
    await notifier.tick()
    row = (await notifications(notifier))[0]
    assert (row.status, row.reason, sender.sent) == ("deferred", "quiet_hours", [])
    clock.advance(timedelta(hours=9))
    await notifier.tick()
    assert len(sender.sent) == 1 and (await notifications(notifier))[0].status == "sent"


async def test_open_case_for_the_order_suppresses_with_an_internal_note(
    notifier: NotifierService, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    opened = TicketOpened(ticket_id="t-1", customer_id="c-1", order_id="o-1", occurred_at=START)
    await deliver(notifier, event_of(opened))
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    (ev,) = await outbox(notifier, "notification.suppressed")
    assert ev.data.reason == "open_case" and ev.data.note.ticket_id == "t-1"
    assert "o-1" in ev.data.note.text and sender.sent == []


async def test_open_case_of_the_customer_naming_no_order_suppresses_as_routing_sends_it(
    notifier: NotifierService, sender: FakeSender
) -> None:
    # routing's ticket.opened names no order (it does not know one): the customer's open case
    # must still suppress the alert, or "where is my parcel" is answered twice.
    await _known_customer(notifier)
    opened = TicketOpened(ticket_id="t-1", customer_id="c-1", occurred_at=START)
    await deliver(notifier, event_of(opened))
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    (ev,) = await outbox(notifier, "notification.suppressed")
    assert ev.data.reason == "open_case" and ev.data.note.ticket_id == "t-1"
    assert sender.sent == []


async def test_open_case_about_another_order_does_not_suppress(
    notifier: NotifierService, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    other = TicketOpened(ticket_id="t-2", customer_id="c-1", order_id="o-9", occurred_at=START)
    await deliver(notifier, event_of(other))
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    await notifier.tick()
    assert await outbox(notifier, "notification.suppressed") == []
    assert len(sender.sent) == 1


@pytest.mark.parametrize("channel", ["whatsapp"])
async def test_stop_turns_consent_off_and_the_next_channel_is_used(
    notifier: NotifierService, sender: FakeSender, channel: str
) -> None:
    await _known_customer(notifier)
    stop = MessageReceived(
        message_id="m-1", channel=Channel(channel), provider="t", provider_message_id="p-1",
        received_at=START, sender=Handle(kind=HandleKind.PHONE, value="+48600100200"),
        text=" stop ", body="stop",
    )  # fmt: skip
    await deliver(notifier, event_of(stop))
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    assert [m.channel for m in sender.sent] == ["sms"]


async def test_failed_send_falls_back_to_the_next_channel(
    notifier: NotifierService, sender: FakeSender
) -> None:
    sender.failing.add("whatsapp")
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    assert [m.channel for m in sender.sent] == ["sms"]
    failed = await outbox(notifier, "notification.failed")
    assert failed[0].data.next_channel == Channel.SMS


async def test_undelivered_in_time_falls_back(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    clock.advance(timedelta(minutes=31))
    await notifier.tick()
    assert [m.channel for m in sender.sent] == ["whatsapp", "sms"]


async def test_channel_without_provider_goes_to_adapters_on_outbound(
    notifier: NotifierService, sender: FakeSender
) -> None:
    sender.channels = ("email",)
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    (out,) = await outbox(notifier, "outbound.message")
    assert out.data.channel == Channel.WHATSAPP and out.data.customer_id == "c-1"
    assert sender.sent == []


async def test_provider_outage_keeps_the_alert_and_sends_when_back(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    sender.failing.update({"whatsapp", "sms", "email"})
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY"))
    await notifier.tick()
    row = (await notifications(notifier))[0]
    assert (row.status, row.reason, sender.sent) == ("scheduled", "provider_outage_retry", [])
    sender.failing.clear()
    clock.advance(timedelta(minutes=30))  # backoff grows with the attempts made
    await notifier.tick()
    row = (await notifications(notifier))[0]
    assert [m.channel for m in sender.sent] == ["email"], (row.status, row.reason, row.history)
    assert (await notifications(notifier))[0].status == "sent"


async def test_stall_threshold_is_learned_from_the_carriers_observed_gaps(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    async with notifier.runtime.uow() as uow:
        policy = {"stall_min_samples": 5, "stall_floor": 3600, "stall_factor": 1.5}
        await Notifications(uow.session, TENANT).put_policy(policy)
        await uow.commit()
    await _known_customer(notifier)
    for n in range(2, 8):  # six dhl parcels scanned 10 h apart: learned p95 12 h, threshold 18 h
        await deliver(notifier, order(n=n))
        await deliver(notifier, scan(START - timedelta(hours=20), n=n))
        await deliver(notifier, scan(START - timedelta(hours=10), n=n))
    await notifier.tick()  # the worker folds the observed gaps into the histogram
    await deliver(notifier, scan(START))
    clock.advance(timedelta(hours=17))
    await notifier.tick()
    assert await notifications(notifier) == []
    clock.advance(timedelta(hours=2))  # 19 h without a scan: stalled (the default is 48 h)
    await notifier.tick()
    assert [(r.shipment_id, r.delay_reason) for r in await notifications(notifier)] == [
        ("s-1", "stalled")
    ]


async def test_stall_and_cutoff_timers_survive_a_restart(
    tmp_path: Path, sender: FakeSender
) -> None:
    clock = Clock()
    settings = settings_for(tmp_path)
    first = bootstrap(settings, bus=LocalBus(":memory:"), clock=clock, sender=sender, timers=False)
    await first.runtime.migrate()
    await _known_customer(first)
    await deliver(first, order(n=2, dispatch_by=START + timedelta(hours=2)))
    await deliver(first, scan(START - timedelta(hours=1)))
    await first.runtime.stop()  # the process goes away with both timers armed
    clock.advance(timedelta(hours=48))
    second = bootstrap(settings, bus=LocalBus(":memory:"), clock=clock, sender=sender, timers=False)
    await second.tick()
    reasons = sorted(r.delay_reason for r in await notifications(second))
    assert reasons == ["missed_dispatch_cutoff", "stalled"]
    await second.runtime.stop()


async def test_a_new_delay_after_recovery_is_a_new_episode_and_a_new_alert(
    notifier: NotifierService, clock: Clock, sender: FakeSender
) -> None:
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY", is_delay=True))
    await deliver(notifier, scan(START + timedelta(hours=1), carrier_code="DY", is_delay=True))
    back = scan(START + timedelta(hours=2), estimate_to=START + timedelta(days=2))  # within promise
    await deliver(notifier, back)
    await deliver(notifier, scan(START + timedelta(hours=3), carrier_code="WX", is_delay=True))
    rows = await notifications(notifier)
    assert [(r.episode, r.delay_reason) for r in rows] == [
        (1, "carrier_delay_code"),
        (2, "carrier_delay_code"),
    ]
