"""Episodes, channel choice, quiet hours, frequency cap, suppression and templates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from notifier.domain.episodes import Episode, on_recovery, on_signal
from notifier.domain.policy import Customer, Policy, channels_for, decide
from notifier.domain.templates import pick, render

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
P = Policy()
ANNA = Customer(
    "c-1",
    language="pl",
    timezone="Europe/Warsaw",
    preferred_channel="email",
    handles={"email": "a@x.pl", "phone": "+48600100200"},
)


def test_one_alert_per_episode_until_the_estimate_worsens_by_the_margin() -> None:
    ep, first = on_signal(
        Episode(), shipment_id="s", reason="stalled", estimate=NOW, margin=P.estimate_margin
    )
    ep, again = on_signal(
        ep,
        shipment_id="s",
        reason="stalled",
        estimate=NOW + timedelta(hours=2),
        margin=P.estimate_margin,
    )
    ep, worse = on_signal(
        ep, shipment_id="s", reason="x", estimate=NOW + timedelta(days=1), margin=P.estimate_margin
    )
    assert first and first.key == "s:1:1" and again is None
    assert worse and worse.key == "s:1:2" and worse.reason == "estimate_worsened"
    _, nxt = on_signal(
        on_recovery(ep), shipment_id="s", reason="stalled", estimate=None, margin=P.estimate_margin
    )
    assert nxt and nxt.key == "s:2:1"


@given(st.lists(st.sampled_from(["stalled", "carrier_delay_code"]), min_size=1, max_size=20))
def test_repeated_signals_without_estimates_alert_once(reasons: list[str]) -> None:
    ep, alerts = Episode(), 0
    for r in reasons:
        ep, alert = on_signal(
            ep, shipment_id="s", reason=r, estimate=None, margin=P.estimate_margin
        )
        alerts += alert is not None
    assert alerts == 1


def test_preferred_channel_first_then_fallback_order_without_opt_outs() -> None:
    assert channels_for(ANNA, P) == ("email", "whatsapp", "sms")
    stopped = Customer("c", handles=ANNA.handles, opted_out=frozenset({"sms", "whatsapp"}))
    assert channels_for(stopped, P) == ("email",)


def test_open_case_suppresses() -> None:
    d = decide(ANNA, now=NOW, policy=P, open_case=True, sent=[])
    assert (d.status, d.reason) == ("suppressed", "open_case")


def test_all_channels_opted_out_suppresses_with_reason() -> None:
    c = Customer("c", handles={"phone": "+48600100200"}, opted_out=frozenset({"sms", "whatsapp"}))
    assert decide(c, now=NOW, policy=P, open_case=False, sent=[]).reason == "opted_out"


def test_quiet_hours_in_customer_zone_defer_to_morning_local_time() -> None:
    night = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 23:30 in Warsaw
    d = decide(ANNA, now=night, policy=P, open_case=False, sent=[])
    assert (d.status, d.reason) == ("deferred", "quiet_hours")
    assert d.not_before == datetime(2026, 11, 21, 7, tzinfo=UTC)  # 08:00 Warsaw
    assert decide(ANNA, now=NOW, policy=P, open_case=False, sent=[]).status == "send"


def test_frequency_cap_defers_until_the_window_frees() -> None:
    sent = [NOW - timedelta(hours=h) for h in (1, 2, 3)]
    d = decide(ANNA, now=NOW, policy=P, open_case=False, sent=sent)
    assert (d.status, d.reason, d.not_before) == (
        "deferred",
        "frequency_cap",
        NOW + timedelta(hours=21),
    )


@given(st.integers(0, 24 * 60 - 1))
def test_deferral_never_lands_inside_quiet_hours(minute: int) -> None:
    at = NOW.replace(hour=0, minute=0) + timedelta(minutes=minute)
    d = decide(
        ANNA,
        now=at,
        policy=Policy(quiet_start=time(20), quiet_end=time(9)),
        open_case=False,
        sent=[],
    )
    when = (d.not_before or at).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Warsaw")).time()
    assert time(9) <= when < time(20)


def test_templates_in_customer_language_carry_order_estimate_and_link() -> None:
    subject, body = render(
        pick("ru", {}, "en"), order_id="o-9", estimate=NOW, tracking_url="https://t/1"
    )
    assert (
        "o-9" in subject
        and "2026-11-20" in body
        and "https://t/1" in body
        and "задерживается" in body
    )
    assert pick("xx", {}, "ro").language == "ro"
