"""Issue 7 acceptance against a real local HTTP server playing the providers, on PostgreSQL, with a
controllable clock: every lateness rule ends in one real send; duplicates, quiet hours, the cap,
fallback, an open case, STOP, an outage and a crash mid-send never lose or double a message."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from notifier.adapters.notifications import Notifications
from notifier.adapters.providers import build_sender
from notifier.bootstrap import NotifierService, bootstrap
from notifier.config import NotifierSettings
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.ingest import DeliveryReceiptReceived, MessageReceived, ReceiptStatus
from sbcontracts.events.routing import TicketOpened
from sbkit.bus.local import LocalBus
from sbkit.db.engine import make_engine
from tests.conftest import ROOT, unique
from tests.fakes.providers import ProviderServer
from tests.unit.notifier.conftest import (
    START,
    TENANT,
    Clock,
    customer,
    deliver,
    event_of,
    notifications,
    order,
    outbox,
    scan,
)

PHONE, EMAIL = "+48600100200", "anna@x.pl"


@pytest.fixture
def providers() -> Iterator[ProviderServer]:
    server = ProviderServer()
    server.up()
    yield server
    server.down()


@pytest.fixture
async def settings(
    pg_url: str, providers: ProviderServer, tmp_path: Path
) -> AsyncIterator[NotifierSettings]:
    schema = "notifier_" + unique("p").replace("-", "_")
    yield NotifierSettings(
        service=unique("notifier"), database_url=pg_url, db_schema=schema,
        auth_key_dir=str(tmp_path / "keys"), retry_attempts=2, retry_initial_backoff_ms=1,
        notifier_http_attempts=2, **providers.settings(),
    )  # fmt: skip
    admin = make_engine(pg_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    await admin.dispose()


@pytest.fixture
async def notifier(settings: NotifierSettings, clock: Clock) -> AsyncIterator[NotifierService]:
    """notifier with its real HTTP sender (SSRF guard on, 127.0.0.1 allow-listed by name)."""
    service = bootstrap(
        settings, bus=LocalBus(":memory:"), clock=clock, sender=build_sender(settings), timers=False
    )
    await service.runtime.migrate()
    yield service
    await service.runtime.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def _known_customer(n: NotifierService, *, orders: int = 1) -> None:
    for e in customer("whatsapp"):
        await deliver(n, e)
    for i in range(1, orders + 1):
        await deliver(n, order(n=i))


async def _statuses(n: NotifierService) -> list[tuple[str, str]]:
    return [(r.status, r.reason) for r in await notifications(n)]


RULES = {
    "carrier_delay_code": ([scan(START, carrier_code="DY", is_delay=True)], timedelta(0)),
    "estimate_after_promise": ([scan(START, estimate_to=START + timedelta(days=6))], timedelta(0)),
    "stalled": ([scan(START - timedelta(hours=1))], timedelta(hours=48)),
    "missed_dispatch_cutoff": ([], timedelta(hours=3)),
}


@pytest.mark.parametrize("rule", list(RULES))
async def test_each_lateness_rule_ends_in_one_signed_webhook_send(
    notifier: NotifierService, clock: Clock, providers: ProviderServer, rule: str
) -> None:
    for e in customer("whatsapp"):
        await deliver(notifier, e)
    await deliver(notifier, order(dispatch_by=START + timedelta(hours=2)))
    scans, wait = RULES[rule]
    for e in scans:
        await deliver(notifier, e)
    clock.advance(wait)
    await notifier.tick()
    await notifier.tick()
    (sent,) = providers.calls()
    assert (sent.api, sent.authentic, sent.recipient) == ("webhook", True, PHONE)
    assert "o-1" in sent.text and "JD1" in sent.text  # order and tracking link, in Russian
    (row,) = await notifications(notifier)
    assert (row.status, row.delay_reason, row.channel) == ("sent", rule, "whatsapp")
    assert sent.key == f"{row.id}:whatsapp" and row.provider_message_id == "webhook-0"


async def test_duplicates_resent_history_and_reordering_send_exactly_one_request(
    notifier: NotifierService, providers: ProviderServer
) -> None:
    await _known_customer(notifier)
    history = [
        scan(START - timedelta(hours=5)),
        scan(START - timedelta(hours=3)),
        scan(START - timedelta(hours=2), carrier_code="WX", is_delay=True),
    ]
    resent = [scan(e.data.occurred_at, carrier_code=e.data.carrier_code) for e in history]
    for e in [history[1], history[0], history[2], history[2], *history, *resent, *resent]:
        await deliver(notifier, e)
    for _ in range(3):
        await notifier.tick()
    assert len(providers.calls()) == 1 and len(await notifications(notifier)) == 1


async def test_quiet_hours_defer_the_request_to_the_customers_morning(
    notifier: NotifierService, clock: Clock, providers: ProviderServer
) -> None:
    await _known_customer(notifier)
    clock.now = START.replace(hour=22)  # 23:00 in Warsaw
    await deliver(notifier, scan(clock.now, carrier_code="DY", is_delay=True))
    await notifier.tick()
    assert providers.calls() == [] and await _statuses(notifier) == [("deferred", "quiet_hours")]
    (scheduled,) = await outbox(notifier, "notification.scheduled")
    assert scheduled.data.not_before == START.replace(day=21, hour=7)  # 08:00 in Warsaw
    clock.now = START.replace(day=21, hour=6, minute=59)  # 07:59 in Warsaw
    await notifier.tick()
    assert providers.calls() == []
    clock.advance(timedelta(minutes=1))
    await notifier.tick()
    assert len(providers.sends("webhook")) == 1
    assert (await notifications(notifier))[0].status == "sent"


async def test_frequency_cap_defers_the_second_alert_until_the_window_frees(
    notifier: NotifierService, clock: Clock, providers: ProviderServer
) -> None:
    async with notifier.runtime.uow() as uow:
        await Notifications(uow.session, TENANT).put_policy({"cap": 1, "cap_window": 6 * 3600})
        await uow.commit()
    await _known_customer(notifier, orders=2)
    await deliver(notifier, scan(START, n=1, carrier_code="DY", is_delay=True))
    await notifier.tick()
    await deliver(notifier, _delivered("webhook-0"))
    clock.advance(timedelta(hours=1))
    await deliver(notifier, scan(clock.now, n=2, carrier_code="DY", is_delay=True))
    await notifier.tick()
    assert len(providers.calls()) == 1
    assert ("deferred", "frequency_cap") in await _statuses(notifier)
    clock.advance(timedelta(hours=5, minutes=1))
    await notifier.tick()
    assert [s.text.count("o-2") for s in providers.sends()] == [0, 1]


async def test_a_failing_webhook_falls_back_to_a_twilio_sms(
    notifier: NotifierService, providers: ProviderServer
) -> None:
    providers.status["webhook"] = 500
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY", is_delay=True))
    await notifier.tick()
    await notifier.tick()
    assert [c.status for c in providers.calls("webhook")] == [500, 500]  # bounded retries
    (sms,) = providers.sends("sms")
    assert (sms.authentic, sms.recipient) == (True, PHONE)
    (failed,) = await outbox(notifier, "notification.failed")
    assert failed.data.next_channel == Channel.SMS
    assert (await notifications(notifier))[0].provider_message_id == "sms-0"


async def test_a_webhook_that_hangs_times_out_is_retried_boundedly_and_falls_back(
    notifier: NotifierService, providers: ProviderServer
) -> None:
    providers.hang["webhook"] = 5.0  # longer than the 2 s client timeout
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY", is_delay=True))
    await notifier.tick()
    assert len(providers.calls("webhook")) == 2  # notifier_http_attempts
    failed = (await outbox(notifier, "notification.failed"))[0]
    assert "ReadTimeout" in (failed.data.error or "") and failed.data.next_channel == Channel.SMS


async def test_not_delivered_in_time_falls_back_to_the_next_channel(
    notifier: NotifierService, clock: Clock, providers: ProviderServer
) -> None:
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY", is_delay=True))
    await notifier.tick()
    clock.advance(timedelta(minutes=29))
    await notifier.tick()
    assert [s.api for s in providers.sends()] == ["webhook"]
    clock.advance(timedelta(minutes=2))  # no receipt within the 30-minute delivery timeout
    await notifier.tick()
    await notifier.tick()
    assert [s.api for s in providers.sends()] == ["webhook", "sms"]
    (failed,) = await outbox(notifier, "notification.failed")
    assert failed.data.reason == "not_delivered_in_time"


async def test_an_open_case_gets_a_note_and_the_provider_gets_nothing(
    notifier: NotifierService, providers: ProviderServer
) -> None:
    await _known_customer(notifier)
    opened = TicketOpened(ticket_id="t-1", customer_id="c-1", order_id="o-1", occurred_at=START)
    await deliver(notifier, event_of(opened))
    await deliver(notifier, scan(START, carrier_code="DY", is_delay=True))
    await notifier.tick()
    assert providers.calls() == []
    (ev,) = await outbox(notifier, "notification.suppressed")
    assert (ev.data.reason, ev.data.note.ticket_id) == ("open_case", "t-1")


def _delivered(provider_message_id: str) -> Any:
    receipt = DeliveryReceiptReceived(
        channel=Channel.WHATSAPP, provider="webhook", provider_message_id=provider_message_id,
        status=ReceiptStatus.DELIVERED, occurred_at=START,
    )  # fmt: skip
    return event_of(receipt)


def _stop(channel: Channel, sender: Handle) -> Any:
    return event_of(
        MessageReceived(
            message_id=f"m-{channel.value}", channel=channel, provider="t",
            provider_message_id=f"p-{channel.value}", received_at=START, sender=sender,
            text="STOP", body="STOP",
        )
    )  # fmt: skip


async def test_stop_on_whatsapp_sends_sms_and_stop_everywhere_sends_nothing(
    notifier: NotifierService, providers: ProviderServer
) -> None:
    await _known_customer(notifier, orders=2)
    phone = Handle(kind=HandleKind.PHONE, value=PHONE)
    await deliver(notifier, _stop(Channel.WHATSAPP, phone))
    await deliver(notifier, scan(START, n=1, carrier_code="DY", is_delay=True))
    await notifier.tick()
    assert [s.api for s in providers.sends()] == ["sms"]
    await deliver(notifier, _stop(Channel.SMS, phone))
    await deliver(notifier, _stop(Channel.EMAIL, Handle(kind=HandleKind.EMAIL, value=EMAIL)))
    await deliver(notifier, scan(START, n=2, carrier_code="DY", is_delay=True))
    await notifier.tick()
    assert [s.api for s in providers.sends()] == ["sms"]
    assert ("suppressed", "opted_out") in await _statuses(notifier)


@pytest.mark.parametrize("outage", ["refused", "503"])
async def test_provider_outage_loses_nothing_and_sends_once_when_back(
    notifier: NotifierService, clock: Clock, providers: ProviderServer, outage: str
) -> None:
    if outage == "refused":
        providers.down()
    else:
        providers.status.update(webhook=503, sms=503, email=503)
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY", is_delay=True))
    for _ in range(3):
        await notifier.tick()
    assert providers.sends() == []
    assert await _statuses(notifier) == [("scheduled", "provider_outage_retry")]
    (row,) = await notifications(notifier)
    clock.now = row.not_before - timedelta(seconds=1)
    await notifier.tick()  # still inside the backoff: nothing is tried
    calls = len(providers.calls())
    if outage == "refused":
        providers.up()
    else:
        providers.status.clear()
    clock.now = row.not_before
    for _ in range(3):
        await notifier.tick()
    assert len(providers.calls()) == calls + 1
    (sent,) = providers.sends()
    (row,) = await notifications(notifier)
    assert (row.status, sent.api, sent.key) == ("sent", "email", f"{row.id}:email")


async def test_process_killed_after_the_provider_accepted_sends_exactly_once(
    notifier: NotifierService, settings: NotifierSettings, providers: ProviderServer
) -> None:
    await _known_customer(notifier)
    await deliver(notifier, scan(START, carrier_code="DY", is_delay=True))
    env = {**os.environ, "SB_TEST_NOTIFIER_SETTINGS": settings.model_dump_json()}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.notifier.tick_process", START.isoformat(),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    providers.kill_on_accept = worker.pid
    out, _ = await asyncio.wait_for(worker.communicate(), timeout=60)
    assert worker.returncode == -9, out.decode()[-2000:]  # killed between accepted and recorded
    providers.kill_on_accept = None
    assert len(providers.sends()) == 1 and await _statuses(notifier) == [("scheduled", "allowed")]

    await notifier.tick()  # the restarted worker: the timer is still due, same idempotency key
    await notifier.tick()
    (row,) = await notifications(notifier)
    calls = providers.calls("webhook")
    assert [c.key for c in calls] == [f"{row.id}:whatsapp"] * 2
    assert len(providers.sends()) == 1  # the customer got one message
    assert (row.status, row.provider_message_id) == ("sent", "webhook-0")
    assert len(await outbox(notifier, "notification.sent")) == 1
