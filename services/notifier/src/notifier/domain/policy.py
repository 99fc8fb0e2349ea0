"""Notification policy: who is told, on which channel, and when (consent, quiet hours, cap, open cases)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CHANNEL_HANDLE = {
    "email": "email",
    "sms": "phone",
    "whatsapp": "phone",
    "telegram": "telegram",
    "messenger": "messenger",
}


@dataclass(frozen=True)
class Policy:
    """A tenant's notification policy (defaults are a sensible start)."""

    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    cap: int = 3
    cap_window: timedelta = timedelta(hours=24)
    fallback_order: tuple[str, ...] = ("whatsapp", "sms", "email")
    estimate_margin: timedelta = timedelta(hours=12)
    stall_default: timedelta = timedelta(hours=48)
    stall_min_samples: int = 100
    stall_floor: timedelta = timedelta(hours=24)
    stall_factor: float = 1.5
    delivery_timeout: timedelta = timedelta(minutes=30)
    default_language: str = "en"


@dataclass(frozen=True)
class Customer:
    """The local read model of a customer, built from crm's events."""

    customer_id: str
    language: str | None = None
    timezone: str | None = None
    preferred_channel: str | None = None
    handles: dict[str, str] = field(default_factory=dict)
    opted_out: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    """What to do with an alert, and why."""

    status: str  # send | deferred | suppressed
    reason: str
    channels: tuple[str, ...] = ()
    not_before: datetime | None = None


def channels_for(
    customer: Customer, policy: Policy, *, skip: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Reachable channels with service consent: the preferred one first, then the fallback order."""
    order = [customer.preferred_channel] if customer.preferred_channel else []
    order += [c for c in policy.fallback_order if c not in order]
    return tuple(
        c
        for c in order
        if c in CHANNEL_HANDLE
        and CHANNEL_HANDLE[c] in customer.handles
        and c not in customer.opted_out
        and c not in skip
    )


def zone(name: str | None) -> ZoneInfo:
    """The customer's IANA zone, UTC when unknown or invalid."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_until(at: datetime, *, tz: ZoneInfo, policy: Policy) -> datetime | None:
    """If `at` falls in the customer's quiet hours, the (UTC) time they end; else None."""
    local = at.astimezone(tz)
    start, end = policy.quiet_start, policy.quiet_end
    t = local.timetz().replace(tzinfo=None)
    wraps = start > end
    inside = (t >= start or t < end) if wraps else (start <= t < end)
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if wraps and t >= start else local.date()
    return datetime.combine(day, end, tzinfo=tz).astimezone(at.tzinfo)


def cap_until(at: datetime, sent: list[datetime], policy: Policy) -> datetime | None:
    """If the cap is reached at `at`, when the oldest counted send leaves the window; else None."""
    recent = sorted(s for s in sent if at - policy.cap_window < s <= at)
    if len(recent) < policy.cap:
        return None
    return recent[len(recent) - policy.cap] + policy.cap_window


def decide(
    customer: Customer | None,
    *,
    now: datetime,
    policy: Policy,
    open_case: bool,
    sent: list[datetime],
) -> Decision:
    """Decide one alert: suppress (with reason), defer to the next allowed time, or send."""
    if open_case:
        return Decision("suppressed", "open_case")
    if customer is None:
        return Decision("suppressed", "unknown_customer")
    channels = channels_for(customer, policy)
    if not channels:
        reason = "opted_out" if customer.opted_out else "no_reachable_channel"
        return Decision("suppressed", reason)
    at, reason = now, ""
    for _ in range(8):  # cap and quiet hours can push each other; a few rounds settle it
        later = cap_until(at, sent, policy)
        if later is not None:
            at, reason = later, reason or "frequency_cap"
            continue
        later = quiet_until(at, tz=zone(customer.timezone), policy=policy)
        if later is None:
            break
        at, reason = later, reason or "quiet_hours"
    if at > now:
        return Decision("deferred", reason, channels, at)
    return Decision("send", "allowed", channels)
