"""KPI formulas, computed on read from summed components (ratios of sums, never averages of ratios)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from analytics.domain.components import SCALAR
from analytics.domain.sketch import LogHistogram, value_of

_NO_BINS: Mapping[int, int] = {}


@dataclass
class Totals:
    """Summed components of some buckets: (name, bin) -> value."""

    values: dict[tuple[str, int], int] = field(default_factory=dict)
    # (sketch, q) -> the bucket of its q-quantile (None: empty), when the read computed it in
    # place of the sketch's bins (`Needs.quantiles`); quantiles do not add up, so never merged
    quantiles: dict[tuple[str, float], int | None] = field(default_factory=dict)
    # bins per name, built on first use (KPIs read several histograms of many bins each)
    _by_name: dict[str, dict[int, int]] | None = field(default=None, repr=False, compare=False)

    def add(self, name: str, bin_: int, value: int) -> None:
        """Add to one component."""
        self.values[(name, bin_)] = self.values.get((name, bin_), 0) + value
        self._by_name = None

    def merge(self, other: Totals) -> None:
        """Add another set of totals."""
        for (name, b), v in other.values.items():
            self.add(name, b, v)
        if other.quantiles:
            if self.quantiles:
                raise ValueError("quantiles of two reads do not add up")
            self.quantiles = dict(other.quantiles)

    def c(self, name: str) -> int:
        """A plain counter."""
        return self.values.get((name, SCALAR), 0)

    def bins(self, name: str) -> dict[int, int]:
        """A histogram's counts per bin (a copy)."""
        return dict(self.counts(name))

    def counts(self, name: str) -> Mapping[int, int]:
        """A histogram's counts per bin, shared with these totals (read them, never change them;
        no copy per read: the KPIs of a row read several histograms, some more than once)."""
        by_name = self._by_name
        if by_name is None:
            by_name = self._by_name = {}
            for (n, b), v in self.values.items():
                by_name.setdefault(n, {})[b] = v
        return by_name.get(name, _NO_BINS)

    def quantile_bin(self, name: str, q: float) -> int | None:
        """The bucket of a sketch's q-quantile (None when empty)."""
        if (name, q) in self.quantiles:
            return self.quantiles[(name, q)]
        return LogHistogram(self.bins(name)).quantile_bin(q)

    def upto(self, name: str, limit: int) -> int:
        """Count of a per-second histogram at bins <= limit."""
        # a plain loop: a per-queue answer asks ≈ 360 of these over a few bins each, and a
        # generator's creation and resumptions cost several times the additions
        total = 0
        for b, v in self.counts(name).items():
            if b <= limit:
                total += v
        return total

    def with_prefix(self, prefix: str) -> dict[str, int]:
        """Counters whose names start with a prefix, keyed by the rest."""
        return {n[len(prefix) :]: v for (n, _), v in self.values.items() if n.startswith(prefix)}


@dataclass(frozen=True)
class Params:
    """Read-time choices: service-level variant, threshold T, short-abandon threshold (s), FCR window."""

    variant: str = "F1"
    threshold_s: int = 20
    short_abandon_s: int = 5
    fcr_days: int = 7


def _ratio(num: int, den: int) -> float | None:
    return num / den if den > 0 else None


def _sl_parts(t: Totals, p: Params) -> tuple[int, int, int, int, int]:
    return (
        t.c("ans"),
        t.c("ab"),
        t.upto("ans_wait_s", p.threshold_s),
        t.upto("ab_wait_s", p.threshold_s),
        t.upto("ab_wait_s", p.short_abandon_s),
    )


SL_VARIANTS: dict[str, Callable[[int, int, int, int, int], tuple[int, int]]] = {
    "F1": lambda ans, ab, ans_t, ab_t, _s: (ans_t + ab_t, ans + ab),
    "F2": lambda ans, _ab, ans_t, _t, _s: (ans_t, ans),
    "F3": lambda ans, ab, ans_t, _t, _s: (ans_t, ans + ab),
    "F4": lambda ans, ab, ans_t, ab_t, _s: (ans_t, ans + ab - ab_t),
    "F5": lambda ans, ab, ans_t, _t, ab_s: (ans_t + ab_s, ans + ab),
}
SL_DESCRIPTIONS = {
    "F1": "(ans_T + ab_T) / (ans + ab): abandons within T count as met",
    "F2": "ans_T / ans: abandons ignored (discouraged)",
    "F3": "ans_T / (ans + ab): every abandon counts as missed",
    "F4": "ans_T / (ans + ab - ab_T): abandons within T excluded",
    "F5": "(ans_T + ab_short) / (ans + ab): short abandons count as met",
}


def service_level(t: Totals, p: Params) -> float | None:
    """Share answered within T under the chosen abandon-handling variant."""
    num, den = SL_VARIANTS[p.variant](*_sl_parts(t, p))
    return _ratio(num, den)


def abandonment_rate(t: Totals, p: Params) -> float | None:
    """(abandoned - short abandons) / (offered - short abandons)."""
    short = t.upto("ab_wait_s", p.short_abandon_s)
    return _ratio(t.c("ab") - short, t.c("offered") - short)


def _mean_s(num: str, den: str) -> Callable[[Totals, Params], float | None]:
    def mean(t: Totals, _: Params) -> float | None:
        r = _ratio(t.c(num), t.c(den))
        return None if r is None else r / 1000

    return mean


def aht(t: Totals, _: Params) -> float | None:
    """(talk + hold + wrap) / handled, in seconds."""
    r = _ratio(t.c("talk_ms") + t.c("hold_ms") + t.c("wrap_ms"), t.c("handled"))
    return None if r is None else r / 1000


def _quantile(sketch: str, q: float) -> Callable[[Totals, Params], float | None]:
    def quantile(t: Totals, _: Params) -> float | None:
        b = t.quantile_bin(sketch, q)
        return None if b is None else value_of(b) / 1000

    return quantile


def _share(num: str, den: str, scale: float = 1.0) -> Callable[[Totals, Params], float | None]:
    def share(t: Totals, _: Params) -> float | None:
        r = _ratio(t.c(num), t.c(den))
        return None if r is None else r * scale

    return share


def nps(t: Totals, _: Params) -> float | None:
    """% promoters (9-10) - % detractors (0-6), -100..100."""
    r = _ratio(t.c("nps_pro") - t.c("nps_det"), t.c("nps_n"))
    return None if r is None else 100 * r


def _count(name: str) -> Callable[[Totals, Params], float | None]:
    return lambda t, _: float(t.c(name))


def backlog(t: Totals, _: Params) -> float | None:
    """Open cases: opened + reopened - resolved (over totals since the beginning)."""
    return float(t.c("opened") + t.c("reopened") - t.c("resolved"))


def _fcr(prefix: str) -> Callable[[Totals, Params], float | None]:
    def fcr(t: Totals, p: Params) -> float | None:
        """Resolutions without a repeat contact on the same issue within N days / resolutions."""
        repeats = t.upto(f"{prefix}fcr_rep_h", 24 * p.fcr_days)
        return _ratio(t.c(f"{prefix}fcr_n") - repeats, t.c(f"{prefix}fcr_n"))

    return fcr


AGE_BUCKETS = ("under_1h", "1h_4h", "4h_24h", "1d_3d", "over_3d")


def _aged(k: int) -> Callable[[Totals, Params], float | None]:
    def aged(t: Totals, _: Params) -> float | None:
        """Open cycles whose age is in bucket k (AGES[k], AGES[k + 1]] at the end of the row."""
        older = t.counts("age_gt_cum")
        return float(older.get(k, 0) - older.get(k + 1, 0))

    return aged


def occupancy(t: Totals, _: Params) -> float | None:
    """Busy (handling) time / online time of agents; away time counts in neither."""
    return _ratio(t.c("busy_ms"), t.c("online_ms"))


Formula = Callable[[Totals, Params], float | None]
# quantile KPIs: (sketch component, q)
QUANTILES = {
    f"{kpi}_p{round(q * 100)}": (f"sk:{sketch}", q)
    for kpi, sketch in (
        ("wait", "wait"),
        ("handle", "handle"),
        ("frt", "frt"),
        ("resolution", "res"),
    )
    for q in (0.5, 0.9)
}
KPIS: dict[str, Formula] = {
    "service_level": service_level,
    "abandonment_rate": abandonment_rate,
    "asa": _mean_s("ans_wait_ms", "ans"),
    "wait_p50": _quantile(*QUANTILES["wait_p50"]),
    "wait_p90": _quantile(*QUANTILES["wait_p90"]),
    "aht": aht,
    "handle_p50": _quantile(*QUANTILES["handle_p50"]),
    "handle_p90": _quantile(*QUANTILES["handle_p90"]),
    "frt": _mean_s("frt_ms", "frt_n"),
    "frt_business": _mean_s("frt_bus_ms", "frt_bus_n"),
    "frt_p50": _quantile(*QUANTILES["frt_p50"]),
    "frt_p90": _quantile(*QUANTILES["frt_p90"]),
    "resolution_time": _mean_s("res_ms", "res_n"),
    "resolution_time_business": _mean_s("res_bus_ms", "res_bus_n"),
    "resolution_p50": _quantile(*QUANTILES["resolution_p50"]),
    "resolution_p90": _quantile(*QUANTILES["resolution_p90"]),
    "csat": _share("csat_top2", "csat_n"),
    "nps": nps,
    "ces": _share("ces_sum", "ces_n"),
    "negative_sentiment_share": _share("sent:negative", "classified"),
    "positive_sentiment_share": _share("sent:positive", "classified"),
    "offered": _count("offered"),
    "answered": _count("ans"),
    "abandoned": _count("ab"),
    "handled": _count("handled"),
    "opened": _count("opened"),
    "resolved": _count("resolved"),
    "messages": _count("messages"),
    "backlog": backlog,
    **{f"backlog_age_{name}": _aged(k) for k, name in enumerate(AGE_BUCKETS)},
    "fcr": _fcr(""),
    "fcr_final": _fcr("final_"),
    "occupancy": occupancy,
    "alerts_sent": _count("alert_sent"),
    "alerts_delivered": _count("alert_delivered"),
    "alerts_suppressed": _count("alert_suppressed"),
    "alerts_ahead_of_contact": _count("alert_ahead"),
    "alerts_behind_contact": _count("alert_behind"),
    "alert_ahead_share": _share("alert_ahead", "alert_sent"),
    "alert_lead_time": _mean_s("alert_lead_ms", "alert_lead_n"),
}
# Measured over all time up to the end of each row (a snapshot), not within the range.
CUMULATIVE = frozenset({"backlog", *(f"backlog_age_{name}" for name in AGE_BUCKETS)})
FINAL = frozenset({"fcr_final"})  # only resolutions whose N-day window has closed


class UnknownChoice(ValueError):
    """A KPI or variant name that does not exist; carries the valid ones."""

    def __init__(self, what: str, given: Iterable[str], valid: Iterable[str]) -> None:
        self.what, self.given, self.valid = what, sorted(given), sorted(valid)
        super().__init__(f"unknown {what}: {', '.join(self.given)}")


def check_kpis(kpis: Iterable[str]) -> None:
    """Raise UnknownChoice for unknown KPI names."""
    bad = [k for k in kpis if k not in KPIS]
    if bad:
        raise UnknownChoice("kpi", bad, KPIS)


def check_names(kpis: Iterable[str], variant: str) -> None:
    """Raise UnknownChoice for unknown KPI or variant names."""
    check_kpis(kpis)
    if variant not in SL_VARIANTS:
        raise UnknownChoice("variant", [variant], SL_VARIANTS)


def evaluate(names: Iterable[str], t: Totals, p: Params) -> Mapping[str, float | None]:
    """The named KPIs of some totals."""
    return {n: KPIS[n](t, p) for n in names}
