"""A crash between "provider accepted" and "recorded" never loses or doubles the alert."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from notifier.bootstrap import bootstrap
from notifier.service_layer.ports import Accepted, Outgoing
from sbkit.bus.local import LocalBus
from tests.unit.notifier.conftest import (
    START,
    Clock,
    customer,
    deliver,
    notifications,
    order,
    scan,
    settings_for,
)


@dataclass
class DedupingProvider:
    """A provider that dedupes on the idempotency key, like Twilio or Stripe-style APIs do."""

    crash_after_accept: bool = True
    delivered: dict[str, Outgoing] = field(default_factory=dict)

    def handles(self, channel: str) -> bool:
        return True

    async def send(self, message: Outgoing) -> Accepted:
        self.delivered.setdefault(message.idempotency_key, message)
        if self.crash_after_accept:
            self.crash_after_accept = False
            raise SystemExit("crash after the provider accepted")  # the process dies mid-send
        return Accepted("p", message.idempotency_key)


async def test_crash_mid_send_then_restart_sends_exactly_once(tmp_path: Path) -> None:
    provider = DedupingProvider()
    settings = settings_for(tmp_path)
    first = bootstrap(
        settings, bus=LocalBus(":memory:"), clock=Clock(), sender=provider, timers=False
    )
    await first.runtime.migrate()
    for e in [*customer(), order(), scan(START, carrier_code="DY")]:
        await deliver(first, e)
    with pytest.raises(SystemExit):
        await first.tick()
    await first.runtime.stop()
    second = bootstrap(
        settings, bus=LocalBus(":memory:"), clock=Clock(), sender=provider, timers=False
    )
    await second.tick()
    await second.tick()
    assert len(provider.delivered) == 1
    assert [r.status for r in await notifications(second)] == ["sent"]
    await second.runtime.stop()
