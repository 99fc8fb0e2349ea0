"""Staffing by Erlang C (no abandonment) and Erlang A (exponential patience); times in seconds."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_AGENTS = 100_000


@dataclass(frozen=True)
class Staffing:
    """Figures of a queue with `agents` agents."""

    agents: int
    p_wait: float
    service_level: float
    asa_s: float
    occupancy: float
    p_abandon: float = 0.0


def erlang_b(n: int, a: float) -> float:
    """Blocking probability by the stable recursion B_k = A*B_{k-1} / (k + A*B_{k-1})."""
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """Probability of waiting, P_wait = N*B / (N - A*(1 - B)); 1 when N <= A."""
    if n <= a:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1 - b))


def erlang_c_figures(n: int, *, rate: float, aht_s: float, threshold_s: float) -> Staffing:
    """Erlang C figures of N agents for arrival rate (per s) and handle time."""
    a = rate * aht_s
    if n <= a:
        return Staffing(n, 1.0, 0.0, math.inf, 1.0)
    pw = erlang_c(n, a)
    sl = 1 - pw * math.exp(-(n - a) * threshold_s / aht_s)
    return Staffing(n, pw, sl, pw * aht_s / (n - a), a / n)


def scheduled(required: int, shrinkage: float) -> int:
    """Agents to schedule: ceil(required / (1 - shrinkage)), never required * (1 + shrinkage)."""
    return math.ceil(required / (1 - shrinkage) - 1e-9)


def agents_erlang_c(
    *, rate: float, aht_s: float, target_sl: float, threshold_s: float, max_occupancy: float = 1.0
) -> Staffing:
    """The smallest N > A meeting the target service level and the occupancy cap."""
    a = rate * aht_s
    n = max(math.floor(a) + 1, math.ceil(a / max_occupancy - 1e-9), 1)
    while n < MAX_AGENTS:
        f = erlang_c_figures(n, rate=rate, aht_s=aht_s, threshold_s=threshold_s)
        if f.service_level >= target_sl and f.occupancy <= max_occupancy:
            return f
        n += 1
    raise ValueError("traffic beyond MAX_AGENTS")


def _stationary(n: int, lam: float, mu: float, theta: float) -> list[float]:
    """Birth-death stationary distribution, truncated where the tail is below 1e-18."""
    logs, top, k = [0.0], 0.0, 0
    while True:
        k += 1
        logs.append(logs[-1] + math.log(lam) - math.log(min(k, n) * mu + max(k - n, 0) * theta))
        top = max(top, logs[-1])
        if (k > n and logs[-1] < top - 41.5) or k > n + 1_000_000:
            break
    weights = [math.exp(x - top) for x in logs]
    total = sum(weights)
    return [w / total for w in weights]


def _served_within(n: int, mu: float, theta: float, *, ahead: int, t: float) -> list[float]:
    """For k = 0..ahead customers ahead: P(served within t, before abandoning) (uniformisation)."""
    lam_u = n * mu + (ahead + 1) * theta
    steps = int(lam_u * t + 12 * math.sqrt(lam_u * t) + 20)
    h = [0.0] * (ahead + 1)  # h[j]: served within m steps starting with j ahead
    out = [0.0] * (ahead + 1)
    for m in range(steps + 1):
        w = (
            math.exp(-lam_u * t + m * math.log(lam_u * t) - math.lgamma(m + 1))
            if t > 0
            else (1.0 if m == 0 else 0.0)
        )
        for j in range(ahead + 1):
            out[j] += w * h[j]
        h = [
            (n * mu + j * theta) / lam_u * (h[j - 1] if j else 1.0)
            + (1 - (n * mu + (j + 1) * theta) / lam_u) * h[j]
            for j in range(ahead + 1)
        ]
    return out


def erlang_a_figures(
    n: int, *, rate: float, aht_s: float, patience_s: float, threshold_s: float
) -> Staffing:
    """Erlang A (M/M/N+M) figures; service level = answered within T / all arrivals."""
    mu, theta = 1 / aht_s, 1 / patience_s
    pi = _stationary(n, rate, mu, theta)
    queue = pi[n:]
    e_q = sum(k * p for k, p in enumerate(queue))
    p_ab = theta * e_q / rate
    served = _served_within(n, mu, theta, ahead=len(queue) - 1, t=threshold_s)
    sl = sum(pi[:n]) + sum(p * s for p, s in zip(queue, served, strict=True))
    occupancy = rate * (1 - p_ab) / (n * mu)
    return Staffing(n, sum(queue), sl, e_q / rate, occupancy, p_ab)


def agents_erlang_a(
    *,
    rate: float,
    aht_s: float,
    patience_s: float,
    target_sl: float,
    threshold_s: float,
    max_occupancy: float = 1.0,
) -> Staffing:
    """The smallest N meeting the target service level and the occupancy cap under Erlang A.

    Both hold from some N on (service level rises and occupancy falls with N), so the answer is
    found by doubling from the Erlang C answer, then bisecting: O(log N) evaluations, where a
    linear scan from 1 took half a minute at 600 Erlangs.
    """

    def figures(n: int) -> Staffing:
        return erlang_a_figures(
            n, rate=rate, aht_s=aht_s, patience_s=patience_s, threshold_s=threshold_s
        )

    def meets(f: Staffing) -> bool:
        return f.service_level >= target_sl and f.occupancy <= max_occupancy

    def hopeless(n: int) -> bool:
        """Overloaded, and the queue where abandons balance arrivals is far longer than what n
        agents serve within T: nobody is answered in time (and the chain would be huge)."""
        served = n / aht_s
        return served < rate and (rate - served) * patience_s > 10 * (served * threshold_s + 10)

    c = agents_erlang_c(
        rate=rate,
        aht_s=aht_s,
        target_sl=target_sl,
        threshold_s=threshold_s,
        max_occupancy=max_occupancy,
    )
    # below target·A agents even the answered share is under the target (SL <= N/A then)
    lo, hi = max(0, math.ceil(target_sl * rate * aht_s) - 1), c.agents
    best = figures(hi)
    while not meets(best):
        if hi >= MAX_AGENTS:
            raise ValueError("traffic beyond MAX_AGENTS")
        lo, hi = hi, min(2 * hi, MAX_AGENTS)
        best = figures(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        f = None if hopeless(mid) else figures(mid)
        if f is not None and meets(f):
            hi, best = mid, f
        else:
            lo = mid
    return best
