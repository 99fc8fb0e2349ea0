"""SLA deadlines: business-time targets per priority, a warning before each, pausing while pending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from routing.domain.calendar import BusinessHours, add_business
from routing.domain.queues import SlaTargets

WARN_AT = 0.8  # warn when 80 % of the target's business time is used


@dataclass(frozen=True)
class Deadline:
    """When one SLA metric warns and breaches."""

    metric: str
    warn_at: datetime
    due_at: datetime


def deadline(
    metric: str,
    target_s: int | None,
    *,
    start: datetime,
    hours: BusinessHours | None,
    used: timedelta = timedelta(0),
) -> Deadline | None:
    """Deadline of a metric started at `start`, with `used` business time already consumed."""
    if target_s is None:
        return None
    target = timedelta(seconds=target_s)
    warn = max(target * WARN_AT - used, timedelta(0))
    left = max(target - used, timedelta(0))
    return Deadline(metric, add_business(hours, start, warn), add_business(hours, start, left))


def targets_for(sla: dict[str, SlaTargets], priority: str) -> SlaTargets:
    """The targets of a priority (falling back to `normal`, then none)."""
    return sla.get(priority) or sla.get("normal") or SlaTargets()


# A provider's timestamp earlier than our receipt by more than this is not believed: a phone with
# a wrong clock or an email's self-declared Date header must not breach an SLA on arrival.
PROVIDER_CLOCK_TRUST = timedelta(hours=1)


def message_time(provider_at: datetime | None, received_at: datetime, *, now: datetime) -> datetime:
    """When the customer wrote, which SLA clocks start from: the provider's timestamp when it is
    plausible (not after ingest received the message, at most PROVIDER_CLOCK_TRUST before),
    else the receive time; never later than `now` (routing processing it late does not count)."""
    at = received_at
    if provider_at is not None and received_at - PROVIDER_CLOCK_TRUST <= provider_at <= received_at:
        at = provider_at
    return min(at, now)
