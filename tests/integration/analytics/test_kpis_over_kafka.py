"""Calls and surveys published on Kafka give exactly the expected KPIs, and a replay changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbcontracts.topics import partition_key
from sbkit.bus.ports import OutgoingRecord
from tests.integration.analytics.conftest import Stack
from tests.unit.analytics.conftest import T0, TENANT, CallTimes, call, survey

RANGE = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
# (outcome, wait s): T = 20 s, short abandon = 5 s; one more call is still waiting
OUTCOMES = [
    ("answered", 5), ("answered", 20), ("answered", 25), ("answered", 60),
    ("abandoned", 3), ("abandoned", 12), ("abandoned", 45),
]  # fmt: skip
HANDLING = [(100, 10, 20), (200, 0, 30), (150, 20, 10), (90, 0, 0)]  # talk, hold, wrap (s)
SCORES = [("csat", s) for s in (5, 4, 3, 1, 5)] + [("nps", s) for s in (10, 9, 8, 6, 0, 10)]
EXPECTED = {
    "F1": 4 / 7,  # (ans_T 2 + ab_T 2) / (ans 4 + ab 3)
    "F2": 2 / 4,
    "F3": 2 / 7,
    "F4": 2 / 5,  # ans_T / (ans + ab - ab_T)
    "F5": 3 / 7,  # (ans_T + ab_short 1) / (ans + ab)
}


def _events() -> list[CloudEvent[Any]]:
    events = [call("offered", f"c{i}", minutes=i) for i in range(8)]
    for i, (kind, wait_s) in enumerate(OUTCOMES):
        events.append(call(kind, f"c{i}", minutes=i + 1, wait_ms=wait_s * 1000))
    for i, (talk, hold, wrap) in enumerate(HANDLING):
        times: CallTimes = {"talk_ms": talk * 1000, "hold_ms": hold * 1000, "wrap_ms": wrap * 1000}
        events.append(call("completed", f"c{i}", minutes=i + 10, **times))
    events += [survey(kind, score, f"r{i}", minutes=i) for i, (kind, score) in enumerate(SCORES)]
    return events


async def _publish(stack: Stack, events: list[CloudEvent[Any]]) -> None:
    await stack.bus.publish(
        [
            OutgoingRecord(stack.topics[e.data.topic], partition_key(TENANT, "all"), encode(e))
            for e in events
        ]
    )


async def _kpis(stack: Stack, **params: Any) -> dict[str, Any]:
    kpis = "service_level,abandonment_rate,asa,aht,csat,nps,offered,answered,handled"
    r = await stack.api.get("/v1/kpis", kpi=kpis, **RANGE, **params)
    assert r.status_code == 200, r.text
    return {k: v["value"] for k, v in r.json()["rows"][0]["kpis"].items()}


async def _until(stack: Stack, check: Any, limit_s: float = 60) -> None:
    for _ in range(int(limit_s / 0.1)):
        if check(await _kpis(stack)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached: {await _kpis(stack)}")


async def test_kpis_are_exact_and_a_replay_changes_nothing(stack: Stack) -> None:
    events = _events()
    await _publish(stack, events)
    await _until(stack, lambda v: v["handled"] == 4 and v["answered"] == 4 and v["csat"] == 0.6)
    await _until(stack, lambda v: v["offered"] == 8 and v["nps"] == pytest.approx(100 / 6))
    first = {variant: await _kpis(stack, variant=variant) for variant in EXPECTED}
    for variant, sl in EXPECTED.items():
        assert first[variant]["service_level"] == pytest.approx(sl, abs=1e-12)
    v = first["F1"]
    assert v["abandonment_rate"] == pytest.approx(2 / 7, abs=1e-12)  # (3 - 1 short) / (8 - 1)
    assert v["asa"] == pytest.approx(27.5, abs=1e-12)  # (5 + 20 + 25 + 60) / 4
    assert v["aht"] == pytest.approx(157.5, abs=1e-12)  # 630 s / 4 handled
    assert v["csat"] == pytest.approx(0.6, abs=1e-12)  # 3 of 5 gave 4 or 5
    assert v["nps"] == pytest.approx(100 * (3 - 2) / 6, abs=1e-12)

    # replay every event (same ids), then a sentinel per topic, outside the range, proves the
    # replay was consumed (one partition key: the sentinels come after the replayed events)
    sentinels = [
        call("offered", "sentinel", minutes=-30),
        survey("nps", 10, "sentinel", minutes=-30),
    ]
    await _publish(stack, [*events, *sentinels])
    await _wait_for_sentinels(stack)
    after = {variant: await _kpis(stack, variant=variant) for variant in EXPECTED}
    assert after == first


async def _wait_for_sentinels(stack: Stack) -> None:
    wide = {"from": (T0 - timedelta(hours=1)).isoformat(), "to": RANGE["to"]}
    for _ in range(600):
        r = await stack.api.get("/v1/kpis", kpi="offered,nps", **wide)
        got = {k: v["value"] for k, v in r.json()["rows"][0]["kpis"].items()}
        if got == {"offered": 9, "nps": pytest.approx(100 * (4 - 2) / 7)}:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"sentinels not consumed: {got}")
