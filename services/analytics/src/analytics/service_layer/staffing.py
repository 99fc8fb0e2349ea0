"""Use case: agents needed per queue and interval by Erlang C and Erlang A from measured traffic."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from analytics.adapters import repository
from analytics.domain import erlang
from analytics.domain.components import INTERVAL
from analytics.domain.kpis import Totals
from analytics.service_layer.errors import InvalidQuery
from sbkit.db.uow import UnitOfWork

ENDLESS_PATIENCE_S = 1e9


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
        uow.session, tenant=tenant, start=start, end=end, group_by="queue", by_interval=True
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
