"""Use case: agents needed per queue and interval by Erlang C and Erlang A from measured traffic."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from analytics.adapters import facts, repository
from analytics.domain import erlang
from analytics.domain.components import INTERVAL, Piece, interval_of
from analytics.domain.kpis import Totals
from analytics.service_layer.errors import InvalidQuery
from sbkit.db.uow import UnitOfWork

ENDLESS_PATIENCE_S = 1e9
MIN_ELAPSED_S = 60.0  # a rate measured over less than a minute of an interval is noise


@dataclass(frozen=True)
class Target:
    """The service goal and the planning factors."""

    target_sl: float = 0.8
    threshold_s: int = 20
    patience_s: float | None = None  # None: measured (waits of all queued calls / abandons)
    shrinkage: float = 0.3
    max_occupancy: float = 0.85

    def check(self) -> None:
        """422 for factors outside their ranges."""
        if not (0 < self.target_sl < 1 and 0 <= self.shrinkage < 1 and 0 < self.max_occupancy <= 1):
            raise InvalidQuery("target_sl and max_occupancy in (0, 1], shrinkage in [0, 1)")
        if self.threshold_s < 0 or (self.patience_s is not None and self.patience_s <= 0):
            raise InvalidQuery("threshold_s >= 0 and patience_s > 0")


def _aht_s(t: Totals) -> float | None:
    handled = t.c("handled")
    return (t.c("talk_ms") + t.c("hold_ms") + t.c("wrap_ms")) / handled / 1000 if handled else None


def _patience_s(t: Totals, target: Target) -> float:
    if target.patience_s is not None:
        return target.patience_s
    waited = t.c("ans_wait_ms") + t.c("ab_wait_ms")
    return waited / t.c("ab") / 1000 if t.c("ab") and waited else ENDLESS_PATIENCE_S


def _plan(f: erlang.Staffing, shrinkage: float) -> dict[str, Any]:
    return {**asdict(f), "scheduled": erlang.scheduled(f.agents, shrinkage)}


def _interval(t: Totals, whole: Totals, target: Target) -> dict[str, Any]:
    rate = t.c("offered") / INTERVAL.total_seconds()
    aht = _aht_s(t) or _aht_s(whole)
    row: dict[str, Any] = {
        "offered": t.c("offered"),
        "aht_s": aht,
        "erlang_c": None,
        "erlang_a": None,
    }
    if not rate or aht is None:
        return row
    goal = {
        "rate": rate,
        "aht_s": aht,
        "target_sl": target.target_sl,
        "threshold_s": target.threshold_s,
    }
    c = erlang.agents_erlang_c(**goal, max_occupancy=target.max_occupancy)
    patience = _patience_s(whole, target)
    a = erlang.agents_erlang_a(**goal, patience_s=patience, max_occupancy=target.max_occupancy)
    row.update(
        patience_s=patience,
        erlang_c=_plan(c, target.shrinkage),
        erlang_a=_plan(a, target.shrinkage),
    )
    return row


async def staffing(
    uow: UnitOfWork,
    tenant: str,
    *,
    queue: str | None,
    start: datetime,
    end: datetime,
    target: Target,
) -> dict[str, Any]:
    """Per queue and 15-minute interval: measured arrivals and AHT, agents needed and to schedule."""
    target.check()
    sums = await repository.sums(
        uow.session,
        tenant=tenant,
        pieces=[Piece(start, end, "15m")],
        group_by="queue",
        by_interval=True,
    )
    wholes: dict[str, Totals] = {}
    for (q, _), t in sums.items():
        wholes.setdefault(q, Totals()).merge(t)
    rows = [
        {
            "queue": q,
            "interval_start": at.isoformat() if at else None,
            **_interval(t, wholes[q], target),
        }
        for (q, at), t in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1] or start))
        if q and (queue is None or q == queue)
    ]
    return {"from": start.isoformat(), "to": end.isoformat(), **asdict(target), "rows": rows}


async def gap(uow: UnitOfWork, tenant: str, *, at: datetime, target: Target) -> dict[str, Any]:
    """The staffing gap at `at`: agents online minus agents needed (Erlang A) per the queues'
    arrival rate so far in the current interval, with the day's handle time and patience."""
    slot = interval_of(at)
    day = slot.replace(hour=0, minute=0)
    sums = await repository.sums(
        uow.session,
        tenant=tenant,
        pieces=[Piece(day, slot + INTERVAL, "15m")],
        group_by="queue",
        by_interval=True,
    )
    wholes: dict[str, Totals] = {}
    for (q, _), t in sums.items():
        wholes.setdefault(q, Totals()).merge(t)
    elapsed_s = max((at - slot).total_seconds(), MIN_ELAPSED_S)
    queues: list[dict[str, Any]] = []
    for q, whole in sorted(wholes.items()):
        now = sums.get((q, slot), Totals())
        aht = _aht_s(now) or _aht_s(whole)
        rate = now.c("offered") / elapsed_s
        if not q or not rate or aht is None:
            continue
        need = erlang.agents_erlang_a(
            rate=rate,
            aht_s=aht,
            patience_s=_patience_s(whole, target),
            target_sl=target.target_sl,
            threshold_s=target.threshold_s,
            max_occupancy=target.max_occupancy,
        )
        queues.append({"queue": q, "rate_per_h": rate * 3600, "aht_s": aht, "needed": need.agents})
    latest = await facts.latest_presence(uow.session, tenant, before=at)
    online = sum(state == "online" for _, _, state in latest)
    needed = sum(int(q["needed"]) for q in queues)
    return {"queues": queues, "needed": needed, "online": online, "gap": online - needed}
