"""Oracle: random streams (shuffled, duplicated, with customer merges and undos) through the service
equal a brute-force computation with the customers as crm's merges leave them."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.domain.components import INTERVAL
from analytics.domain.sketch import ALPHA
from sbcontracts.envelope import CloudEvent, new_event
from sbcontracts.events.common import Channel, Handle, HandleKind
from sbcontracts.events.crm import (
    CustomerMerged,
    CustomerUnmerged,
    MessageAttributed,
    Provenance,
    ProvenanceKind,
)
from sbcontracts.events.ingest import CallCompleted, MessageReceived
from sbcontracts.events.notifier import (
    NotificationDelivered,
    NotificationScheduled,
    NotificationSent,
    NotificationSuppressed,
)
from sbcontracts.events.routing import (
    AgentPresenceChanged,
    Category,
    Priority,
    Sentiment,
    TicketAgentReplied,
    TicketClassified,
    TicketOpened,
    TicketReopened,
    TicketResolved,
)
from tests.unit.analytics import brute
from tests.unit.analytics.conftest import T0, TENANT, Api, CallTimes, call, deliver, survey

HOURS = 4
END = T0 + timedelta(hours=HOURS)
QUEUES = ("q1", "q2", "q3")
AGENTS = ("a1", "a2", "a3", "a4")
CUSTOMERS = 10
ORDERS = ("o1", "o2", "o3", "o4")
CATEGORIES = (Category.BILLING, Category.RETURNS, Category.DELIVERY_DELAY)
T_S, SHORT_S = 20, 5


def _ticket(
    cls: type[Any], rng: random.Random, tid: str, minute: float, **kw: Any
) -> CloudEvent[Any]:
    at = T0 + timedelta(minutes=minute)
    data = cls(
        ticket_id=tid,
        customer_id=f"cust{int(tid[1:]) % CUSTOMERS}",
        queue=rng.choice(QUEUES),
        channel=Channel.EMAIL,
        occurred_at=at,
        **kw,
    )
    return new_event(data, tenant_id=TENANT, source="routing", time=at)


def _minute(rng: random.Random, low: float = 0, high: float = HOURS * 60 - 1) -> float:
    """A random event time in minutes from T0, on a whole millisecond (as providers send them)."""
    return round(rng.uniform(low, high) * 60_000) / 60_000


def _stream(rng: random.Random) -> list[CloudEvent[Any]]:
    minute = lambda: _minute(rng)  # noqa: E731
    out: list[CloudEvent[Any]] = []
    for i in range(120):
        q, wait = (
            rng.choice(QUEUES),
            rng.choice(
                [0, 999, 1000, 4_999, 5_000, 5_001, 20_000, 20_001, rng.randint(0, 300_000)]
            ),
        )
        out.append(call("offered", f"c{i}", queue=q, minutes=minute()))
        kind = rng.choice(["answered", "answered", "abandoned", "none"])
        if kind != "none":
            out.append(call(kind, f"c{i}", queue=q, minutes=minute(), wait_ms=wait))
        if kind == "answered":
            times: CallTimes = {
                "talk_ms": rng.randint(0, 600_000),
                "hold_ms": rng.randint(0, 600_000),
                "wrap_ms": rng.randint(0, 600_000),
            }
            agent = rng.choice([None, *AGENTS])
            out.append(call("completed", f"c{i}", queue=q, minutes=minute(), agent=agent, **times))
    for i in range(60):
        t = f"t{i}"
        opened = rng.choice(
            [minute(), minute(), _minute(rng, -4 * 24 * 60, 0), _minute(rng, 0, 40 * 60)]
        )
        order = rng.choice([None, *ORDERS])
        out.append(_ticket(TicketOpened, rng, t, opened, order_id=order))
        for _ in range(rng.choice([1, 1, 2, 3])):  # re-classified cases count once
            cat, sent = rng.choice(CATEGORIES), rng.choice(list(Sentiment))
            out.append(
                _ticket(
                    TicketClassified,
                    rng,
                    t,
                    minute(),
                    category=cat,
                    sentiment=sent,
                    priority=Priority.NORMAL,
                )
            )
        for cycle in range(1, rng.randint(1, 3) + 1):
            bus = rng.choice([None, rng.randint(0, 10**7)])
            out.append(
                _ticket(
                    TicketAgentReplied,
                    rng,
                    t,
                    minute(),
                    cycle=cycle,
                    message_id=f"{t}-{cycle}",
                    first_response=True,
                    response_ms=rng.randint(0, 10**8),
                    business_response_ms=bus,
                )
            )
            if rng.random() < 0.7:
                out.append(
                    _ticket(
                        TicketResolved,
                        rng,
                        t,
                        minute(),
                        cycle=cycle,
                        resolution_ms=rng.randint(0, 10**9),
                        business_resolution_ms=rng.choice([None, rng.randint(0, 10**8)]),
                    )
                )
                if rng.random() < 0.4:
                    out.append(_ticket(TicketReopened, rng, t, minute(), cycle=cycle + 1))
    for i in range(80):
        kind = rng.choice(["csat", "nps", "ces"])
        low, high = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}[kind]
        out.append(survey(kind, rng.randint(low, high), f"r{i}", minutes=minute()))
    merges = _merges(rng)
    return _rekeyed(rng, out, merges) + _presence(rng) + _alerts(rng) + _messages(rng) + merges


def _rekeyed(
    rng: random.Random, events: list[CloudEvent[Any]], merges: list[CloudEvent[Any]]
) -> list[CloudEvent[Any]]:
    """Some case events after the opening under the survivor of a merge of the case's customer
    (undone later or not), as routing publishes them while the merge holds."""
    into = {e.data.merged_id: e.data.survivor_id for e in merges if hasattr(e.data, "merged_id")}
    out = []
    for e in events:
        d = e.data
        if hasattr(d, "ticket_id") and not isinstance(d, TicketOpened) and rng.random() < 0.4:
            d = d.model_copy(update={"customer_id": into.get(d.customer_id, d.customer_id)})
            e = e.model_copy(update={"data": d})
        out.append(e)
    return out


def _merges(rng: random.Random) -> list[CloudEvent[Any]]:
    """crm merging customers (chains too) and undoing some merges, in crm's order (delivered
    shuffled like everything else)."""
    out: list[CloudEvent[Any]] = []
    live = [f"cust{i}" for i in range(CUSTOMERS)]
    active: list[tuple[str, str, str]] = []  # merge id, survivor, merged
    how = Provenance(kind=ProvenanceKind.API, ref="agent")
    for i in range(12):
        at = T0 + timedelta(minutes=_minute(rng) + i)  # later steps later: the latest merge stands
        data: Any
        if active and rng.random() < 0.35:
            merge_id, survivor, merged = active.pop(rng.randrange(len(active)))
            live.append(merged)
            data = CustomerUnmerged(
                merge_id=merge_id,
                customer_id=survivor,
                survivor_id=survivor,
                restored_id=merged,
                provenance=how,
                unmerged_at=at,
            )
        else:
            merged, survivor = rng.sample(live, 2)
            live.remove(merged)
            active.append((f"m{i}", survivor, merged))
            data = CustomerMerged(
                merge_id=f"m{i}",
                customer_id=survivor,
                survivor_id=survivor,
                merged_id=merged,
                provenance=how,
                merged_at=at,
            )
        out.append(new_event(data, tenant_id=TENANT, source="crm", time=at))
    return out


def _messages(rng: random.Random) -> list[CloudEvent[Any]]:
    """Inbound customer messages attributed by crm (contact volume)."""
    out = []
    for i in range(25):
        at = T0 + timedelta(minutes=_minute(rng))
        msg = MessageReceived(
            message_id=f"m{i}",
            channel=rng.choice([Channel.WHATSAPP, Channel.EMAIL]),
            provider="test",
            provider_message_id=f"m{i}",
            received_at=at,
            sender=Handle(kind=HandleKind.PHONE, value="+48600100200"),
            text="hi",
            body="hi",
        )
        data = MessageAttributed(message=msg, customer_id=f"cust{rng.randrange(CUSTOMERS)}")
        out.append(new_event(data, tenant_id=TENANT, source="crm", time=at))
    return out


def _presence(rng: random.Random) -> list[CloudEvent[Any]]:
    """Presence changes of each agent from an hour before the range to an hour after it."""
    out = []
    for agent in AGENTS:
        times = {_minute(rng, -60, HOURS * 60 + 60) for _ in range(rng.randint(1, 10))}
        for at in times:
            data = AgentPresenceChanged(
                agent_id=agent,
                presence=rng.choice(["online", "online", "away", "offline"]),
                occurred_at=T0 + timedelta(minutes=at),
            )
            out.append(new_event(data, tenant_id=TENANT, source="routing"))
    return out


def _alerts(rng: random.Random) -> list[CloudEvent[Any]]:
    """Delay alerts: scheduled, then maybe sent and delivered, or suppressed."""
    out = []
    for i in range(30):
        at = _minute(rng)
        common = {
            "notification_id": f"n{i}",
            "customer_id": f"cust{rng.randrange(CUSTOMERS)}",
            "order_id": rng.choice(ORDERS),
            "shipment_id": f"s{i}",
            "episode": 1,
            "delay_reason": "stalled",
            "reason": "allowed",
            "channel": Channel.SMS,
        }
        steps: list[Any] = [
            NotificationScheduled(**common, occurred_at=T0 + timedelta(minutes=at), not_before=T0)
        ]
        if rng.random() < 0.15:
            steps.append(NotificationSuppressed(**common, occurred_at=T0 + timedelta(minutes=at)))
        elif rng.random() < 0.85:
            at += _minute(rng, 0, 30)
            steps.append(
                NotificationSent(**common, provider="sms", occurred_at=T0 + timedelta(minutes=at))
            )
            if rng.random() < 0.7:
                at += _minute(rng, 0, 60)
                steps.append(
                    NotificationDelivered(**common, occurred_at=T0 + timedelta(minutes=at))
                )
        out += [new_event(d, tenant_id=TENANT, source="notifier") for d in steps]
    return out


def _ratio(n: float, d: float) -> float | None:
    return n / d if d else None


def _calls(events: list[CloudEvent[Any]]) -> dict[str, float | None]:
    by: dict[str, list[Any]] = defaultdict(list)
    for e in events:
        by[e.type.rsplit(".", 1)[-1]].append(e.data)
    ans = [d.wait_ms for d in by["answered"]]
    ab = [d.wait_ms for d in by["abandoned"]]
    ans_t = sum(w <= T_S * 1000 for w in ans)
    ab_t = sum(w <= T_S * 1000 for w in ab)
    ab_s = sum(w <= SHORT_S * 1000 for w in ab)
    handle = [d.talk_ms + d.hold_ms + d.wrap_ms for d in by["completed"]]
    return {
        "F1": _ratio(ans_t + ab_t, len(ans) + len(ab)),
        "F2": _ratio(ans_t, len(ans)),
        "F3": _ratio(ans_t, len(ans) + len(ab)),
        "F4": _ratio(ans_t, len(ans) + len(ab) - ab_t),
        "F5": _ratio(ans_t + ab_s, len(ans) + len(ab)),
        "abandonment_rate": _ratio(len(ab) - ab_s, len(by["offered"]) - ab_s),
        "asa": _ratio(sum(ans), len(ans) * 1000),
        "aht": _ratio(sum(handle), len(handle) * 1000),
        "offered": len(by["offered"]),
        "answered": len(ans),
        "abandoned": len(ab),
        "handled": len(handle),
    }


def _rest(events: list[CloudEvent[Any]]) -> dict[str, float | None]:
    data = [e.data for e in events]
    frt = [d.response_ms for d in data if isinstance(d, TicketAgentReplied) and d.first_response]
    frt_b = [
        d.business_response_ms
        for d in data
        if isinstance(d, TicketAgentReplied) and d.business_response_ms is not None
    ]
    res = [d.resolution_ms for d in data if isinstance(d, TicketResolved)]
    res_b = [
        d.business_resolution_ms
        for d in data
        if isinstance(d, TicketResolved) and d.business_resolution_ms is not None
    ]
    n = lambda cls: sum(isinstance(d, cls) and d.occurred_at < END for d in data)  # noqa: E731
    scores: dict[str, list[int]] = defaultdict(list)
    for e in events:
        if e.type.endswith("survey.responded"):
            scores[e.data.kind.value].append(e.data.score)
    nps = scores["nps"]
    return {
        "frt": _ratio(sum(frt), len(frt) * 1000),
        "frt_business": _ratio(sum(frt_b), len(frt_b) * 1000),
        "resolution_time": _ratio(sum(res), len(res) * 1000),
        "resolution_time_business": _ratio(sum(res_b), len(res_b) * 1000),
        "opened": n(TicketOpened)
        - sum(isinstance(d, TicketOpened) and d.occurred_at < T0 for d in data),
        "resolved": n(TicketResolved),
        "messages": sum(isinstance(d, MessageAttributed) for d in data),
        "backlog": n(TicketOpened) + n(TicketReopened) - n(TicketResolved),
        "negative_sentiment_share": brute.sentiment_share(events, Sentiment.NEGATIVE),
        "positive_sentiment_share": brute.sentiment_share(events, Sentiment.POSITIVE),
        **{f"backlog_age_{k}": v for k, v in brute.aging(events, END).items()},
        "fcr": brute.fcr(events, days=7, now=None, interval=INTERVAL),
        "occupancy": brute.occupancy(events, T0, END),
        **brute.alerts(events),
        "csat": _ratio(sum(s >= 4 for s in scores["csat"]), len(scores["csat"])),
        "nps": _ratio(100 * (sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)), len(nps)),
        "ces": _ratio(sum(scores["ces"]), len(scores["ces"])),
    }


def _exact_quantile(values: list[int], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))] / 1000


async def _get(api: Api, **params: Any) -> list[dict[str, Any]]:
    rng = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=HOURS)).isoformat()}
    r = await api.get("/v1/kpis", threshold_s=T_S, short_abandon_s=SHORT_S, **rng, **params)
    assert r.status_code == 200, r.text
    return [
        {**row, "kpis": {k: v["value"] for k, v in row["kpis"].items()}} for row in r.json()["rows"]
    ]


def _close(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got.keys() == want.keys()
    for k, w in want.items():
        assert got[k] == (None if w is None else pytest.approx(w, rel=1e-9, abs=1e-9)), k


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_streams_equal_brute_force(api: Api, seed: int) -> None:
    rng = random.Random(seed)
    events = _stream(rng)
    delivered = events + rng.sample(events, len(events) // 3)  # duplicates
    rng.shuffle(delivered)  # out of order and late
    for e in delivered:
        await deliver(api.service, e)

    calls = [e for e in events if ".call." in e.type]
    want = {**_calls(calls), **_rest(events)}
    variants = {
        v: (await _get(api, kpi="service_level", variant=v))[0]["kpis"]["service_level"]
        for v in ("F1", "F2", "F3", "F4", "F5")
    }
    _close(variants, {v: want[v] for v in variants})
    names = [k for k in want if not k.startswith("F")]
    _close((await _get(api, kpi=",".join(names)))[0]["kpis"], {k: want[k] for k in names})

    for row in await _get(api, kpi="service_level,asa,aht,offered", group_by="queue"):
        mine = _calls([e for e in calls if e.data.queue == row["queue"]])
        _close(
            row["kpis"],
            {
                "service_level": mine["F1"],
                "asa": mine["asa"],
                "aht": mine["aht"],
                "offered": mine["offered"],
            },
        )

    data = [e.data for e in events]
    samples = {
        "wait": [e.data.wait_ms for e in calls if e.type.endswith("answered")],
        "handle": [d.talk_ms + d.hold_ms + d.wrap_ms for d in data if isinstance(d, CallCompleted)],
        "frt": [d.response_ms for d in data if isinstance(d, TicketAgentReplied)],
        "resolution": [d.resolution_ms for d in data if isinstance(d, TicketResolved)],
    }
    quantiles = ",".join(f"{k}_p{q}" for k in samples for q in (50, 90))
    got = (await _get(api, kpi=quantiles))[0]["kpis"]
    for k, values in samples.items():
        for q in (50, 90):
            want_q = _exact_quantile(values, q / 100)
            assert got[f"{k}_p{q}"] == pytest.approx(want_q, rel=ALPHA, abs=1e-9), (k, q)


@pytest.mark.parametrize("seed", [3, 4])
async def test_derived_kpis_equal_brute_force(api: Api, seed: int) -> None:
    """FCR (provisional and final), aging backlog per hour, occupancy per agent, trends."""
    rng = random.Random(seed)
    events = _stream(rng)
    delivered = events + rng.sample(events, len(events) // 3)
    rng.shuffle(delivered)
    for e in delivered:
        await deliver(api.service, e)

    now = datetime.now(UTC)
    for days in (1, 2, 7):
        got = (await _get(api, kpi="fcr,fcr_final", fcr_days=days))[0]["kpis"]
        want = {
            "fcr": brute.fcr(events, days=days, now=None, interval=INTERVAL),
            "fcr_final": brute.fcr(events, days=days, now=now, interval=INTERVAL),
        }
        _close(got, want)
    ages = ",".join(f"backlog_age_{k}" for k in brute.AGE_EDGES)
    for row in await _get(api, kpi=ages, interval="1h"):
        snapshot = datetime.fromisoformat(row["interval_start"]) + timedelta(hours=1)
        want_ages = {f"backlog_age_{k}": v for k, v in brute.aging(events, snapshot).items()}
        _close(row["kpis"], want_ages)
    for row in await _get(api, kpi="occupancy", group_by="agent"):
        if row["agent"]:
            _close(row["kpis"], {"occupancy": brute.occupancy(events, T0, END, row["agent"])})
    r = await api.get(
        "/v1/trends/categories", interval="1h", **{"from": T0.isoformat(), "to": END.isoformat()}
    )
    got_trends = {
        row["interval_start"]: {c: v["count"] for c, v in row["categories"].items()}
        for row in r.json()["rows"]
    }
    assert got_trends == brute.categories_by_hour(events, T0)
