"""Which stored components each KPI reads, and at which thresholds it reads a histogram.

A read asks the database for less than every stored bin: the bins of a per-second (or per-hour)
histogram that the requested KPIs only count up to thresholds are summed per threshold band,
and every histogram no requested KPI reads is summed into its bin 0. Rows are never dropped, so
the groups and slots of the answer stay exactly those of the stored rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from analytics.domain.kpis import KPIS, QUANTILES, Params, Totals
from analytics.domain.sketch import BLOCK

PARTS: Mapping[str, tuple[str, ...]] = {
    "service_level": ("ans", "ab", "ans_wait_s", "ab_wait_s"),
    "abandonment_rate": ("ab", "offered", "ab_wait_s"),
    "asa": ("ans_wait_ms", "ans"),
    "wait_p50": ("sk:wait",),
    "wait_p90": ("sk:wait",),
    "aht": ("talk_ms", "hold_ms", "wrap_ms", "handled"),
    "handle_p50": ("sk:handle",),
    "handle_p90": ("sk:handle",),
    "frt": ("frt_ms", "frt_n"),
    "frt_business": ("frt_bus_ms", "frt_bus_n"),
    "frt_p50": ("sk:frt",),
    "frt_p90": ("sk:frt",),
    "resolution_time": ("res_ms", "res_n"),
    "resolution_time_business": ("res_bus_ms", "res_bus_n"),
    "resolution_p50": ("sk:res",),
    "resolution_p90": ("sk:res",),
    "csat": ("csat_top2", "csat_n"),
    "nps": ("nps_pro", "nps_det", "nps_n"),
    "ces": ("ces_sum", "ces_n"),
    "negative_sentiment_share": ("sent:negative", "classified"),
    "positive_sentiment_share": ("sent:positive", "classified"),
    "offered": ("offered",),
    "answered": ("ans",),
    "abandoned": ("ab",),
    "handled": ("handled",),
    "opened": ("opened",),
    "resolved": ("resolved",),
    "messages": ("messages",),
    # snapshots: the in-range parts are added to the totals before the range (`*_cum`)
    "backlog": ("opened", "reopened", "resolved"),
    **{k: ("age_gt",) for k in KPIS if k.startswith("backlog_age_")},
    "fcr": ("fcr_n", "fcr_rep_h"),
    "fcr_final": ("fcr_n", "fcr_rep_h"),  # those of intervals whose window closed
    "occupancy": ("busy_ms", "online_ms"),
    "alerts_sent": ("alert_sent",),
    "alerts_delivered": ("alert_delivered",),
    "alerts_suppressed": ("alert_suppressed",),
    "alerts_ahead_of_contact": ("alert_ahead",),
    "alerts_behind_contact": ("alert_behind",),
    "alert_ahead_share": ("alert_ahead", "alert_sent"),
    "alert_lead_time": ("alert_lead_ms", "alert_lead_n"),
}
# every component stored with more than one bin
HISTOGRAMS = (
    "ans_wait_s",
    "ab_wait_s",
    "sk:wait",
    "sk:handle",
    "sk:frt",
    "sk:res",
    "fcr_rep_h",
    "age_gt",
)


# The coarse copies of the per-queue rollups (`kpi_*_queue_blocks`) keep each sketch as its
# counts per block of BLOCK bins and each per-second wait histogram in blocks of WAIT_S_BLOCK
# seconds up to WAIT_S_KEPT, each kept at its upper bound (bin 0 as 0, bins 1-5 as 5, …, 56-60
# as 60; the rest summed into WAIT_S_KEPT + 1): a band `bin <= T` over them is exact for every T
# that is 0 or a multiple of the block up to WAIT_S_KEPT (10, 15, 20, 30, 60 s: the limits
# contact centres use). What a per-queue total reads of them in step 1 (those bands, quantile
# blocks): ≈ 28 instead of ≈ 122 wait rows per queue and period (migration 0011).
WAIT_S_KEPT = 60
WAIT_S_BLOCK = 5
WAIT_HISTOGRAMS = ("ans_wait_s", "ab_wait_s")


def coarse_bin(name: str, bin_: int) -> int:
    """The bin a stored bin is kept as in the coarse rollups (migration 0011's SQL does the same)."""
    if name.startswith("sk:"):
        return bin_ // BLOCK
    if name in WAIT_HISTOGRAMS:
        if bin_ > WAIT_S_KEPT:
            return WAIT_S_KEPT + 1
        return -(-bin_ // WAIT_S_BLOCK) * WAIT_S_BLOCK  # its block's upper bound
    return bin_


def coarse_keeps(names: Iterable[str]) -> bool:
    """Whether the coarse rollups hold these names' rows exactly as the fine ones (no sketch, no
    per-second wait histogram: `coarse_bin` leaves their bins as they are)."""
    return not any(n.startswith("sk:") or n in WAIT_HISTOGRAMS for n in names)


@dataclass(frozen=True)
class Needs:
    """Component names to read; for some histograms, the only thresholds they are counted at."""

    names: frozenset[str]
    limits: Mapping[str, tuple[int, ...]]
    # sketch -> the q of every quantile read of it (read as those quantiles, not as bins)
    quantiles: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __hash__(self) -> int:  # (a key of built statements; the mappings are never changed)
        return hash(
            (self.names, *(tuple(sorted(m.items())) for m in (self.limits, self.quantiles)))
        )

    def coarse(self, blocked: Iterable[str]) -> bool:
        """Whether the coarse rollup answers these needs when the sketches in `blocked` are read
        as blocks: every sketch read is one of them and every wait band's limit is a block's
        upper bound (`coarse_bin`: 0 or a multiple of WAIT_S_BLOCK up to WAIT_S_KEPT; any other
        limit, e.g. T = 17 s or over 60 s, splits a block: the fine rollups are read)."""
        sketches = {n for n in self.names if n.startswith("sk:")}
        limits = [lim for n, ls in self.limits.items() if n in WAIT_HISTOGRAMS for lim in ls]
        kept = (0 <= lim <= WAIT_S_KEPT and lim % WAIT_S_BLOCK == 0 for lim in limits)
        return sketches <= set(blocked) and all(kept)

    def binned(self) -> Needs:
        """The same needs with every sketch read as bins (for reads summed further in Python:
        quantiles do not add up)."""
        return replace(self, quantiles={})

    def band(self, name: str, bin_: int) -> int:
        """The bin a stored bin is read as: the smallest limit at or above it (else past the
        largest), so `Totals.upto(name, limit)` is unchanged for every limit."""
        limits = self.limits.get(name)
        if limits is None:
            return bin_
        return next((lim for lim in limits if bin_ <= lim), limits[-1] + 1)

    def read_as(self, name: str, bin_: int) -> int:
        """The bin a stored bin is read as: banded, or 0 in a histogram no requested KPI reads."""
        if name in HISTOGRAMS and name not in self.names:
            return 0
        return self.band(name, bin_)

    def reduce(self, t: Totals) -> Totals:
        """What a read with these needs returns for stored totals `t` (the SQL does the same)."""
        out = Totals()
        for (name, bin_), value in t.values.items():
            if name not in self.quantiles:
                out.add(name, self.read_as(name, bin_), value)
        present = {name for name, _ in t.values}
        for name, qs in self.quantiles.items():
            if name in present:
                out.quantiles |= {(name, q): t.quantile_bin(name, q) for q in qs}
        return out


def needs(kpis: Iterable[str], p: Params) -> Needs:
    """What the read of these KPIs with these parameters needs from the stored components."""
    kpis = set(kpis)
    names = frozenset(n for k in kpis for n in PARTS[k])
    limits: dict[str, set[int]] = {}
    if "service_level" in kpis:
        limits.setdefault("ans_wait_s", set()).add(p.threshold_s)
        limits.setdefault("ab_wait_s", set()).update((p.threshold_s, p.short_abandon_s))
    if "abandonment_rate" in kpis:
        limits.setdefault("ab_wait_s", set()).add(p.short_abandon_s)
    if kpis & {"fcr", "fcr_final"}:
        limits["fcr_rep_h"] = {24 * p.fcr_days}
    quantiles: dict[str, set[float]] = {}
    for kpi in kpis & set(QUANTILES):
        sketch, q = QUANTILES[kpi]
        quantiles.setdefault(sketch, set()).add(q)
    return Needs(
        names,
        {n: tuple(sorted(ls)) for n, ls in limits.items()},
        {n: tuple(sorted(qs)) for n, qs in quantiles.items()},
    )
