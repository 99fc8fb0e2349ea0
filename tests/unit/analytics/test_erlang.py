"""Erlang C and Erlang A against worked examples and their invariants."""

from __future__ import annotations

import math

import pytest

# not `from analytics.domain import erlang`: mypy's cache does not record a submodule imported
# that way as a dependency, so an error it cached before erlang.py existed was never rechecked
import analytics.domain.erlang as erlang

RATE = 100 / 1800  # 100 calls per 30 minutes


def _direct_erlang_c(n: int, a: float) -> float:
    top = a**n / math.factorial(n) * n / (n - a)
    return top / (sum(a**k / math.factorial(k) for k in range(n)) + top)


def test_erlang_c_worked_example_100_calls_per_half_hour_aht_180s() -> None:
    eleven = erlang.erlang_c_figures(11, rate=RATE, aht_s=180, threshold_s=20)
    assert eleven.p_wait == pytest.approx(0.6821, abs=1e-4)
    assert eleven.service_level == pytest.approx(0.3896, abs=1e-4)
    need = erlang.agents_erlang_c(rate=RATE, aht_s=180, target_sl=0.8, threshold_s=20)
    assert need.agents == 14
    assert need.service_level == pytest.approx(0.8884, abs=1e-4)
    assert need.asa_s == pytest.approx(7.84, abs=0.01)


def test_recursion_equals_the_closed_form_where_the_closed_form_is_safe() -> None:
    for n, a in ((5, 2.5), (13, 10.0), (40, 33.3)):
        assert erlang.erlang_c(n, a) == pytest.approx(_direct_erlang_c(n, a), rel=1e-12)


def test_large_traffic_is_numerically_stable() -> None:
    need = erlang.agents_erlang_c(rate=5000 / 180, aht_s=180, target_sl=0.8, threshold_s=20)
    assert 5000 < need.agents < 5100
    assert 0.8 <= need.service_level < 0.9
    assert 0 < erlang.erlang_c(10_000, 9_900.0) < 1


def test_occupancy_cap_adds_agents() -> None:
    capped = erlang.agents_erlang_c(
        rate=RATE, aht_s=180, target_sl=0.8, threshold_s=20, max_occupancy=0.7
    )
    assert capped.agents == 15 and capped.occupancy <= 0.7


def test_shrinkage_divides_never_multiplies() -> None:
    assert erlang.scheduled(14, 0.3) == 20  # 14 / 0.7 = 20, not 14 * 1.3 = 18.2
    assert erlang.scheduled(12, 0.25) == 16


def test_erlang_a_with_endless_patience_is_erlang_c() -> None:
    a = erlang.erlang_a_figures(13, rate=RATE, aht_s=180, patience_s=1e9, threshold_s=20)
    c = erlang.erlang_c_figures(13, rate=RATE, aht_s=180, threshold_s=20)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-5)


def _per_customer(n: int, patience: float) -> tuple[float, float]:
    """P(abandon) and E[wait] summed over what an arrival sees (PASTA), independently."""
    mu, theta = 1 / 180, 1 / patience
    terms, k = [1.0], 0
    while k < n + 2000:
        k += 1
        terms.append(terms[-1] * RATE / (min(k, n) * mu + max(k - n, 0) * theta))
    pi = [t / sum(terms) for t in terms]
    p_ab = wait = 0.0
    for ahead, p in enumerate(pi[n:]):
        reach = 1.0
        for j in range(ahead, -1, -1):  # customers ahead leave by service or abandonment
            out = n * mu + j * theta
            wait += p * reach / (out + theta)
            reach *= out / (out + theta)
        p_ab += p * (1 - reach)
    return p_ab, wait


@pytest.mark.parametrize(("n", "patience"), [(8, 60.0), (11, 120.0), (14, 300.0)])
def test_erlang_a_p_abandon_equals_theta_times_mean_wait(n: int, patience: float) -> None:
    f = erlang.erlang_a_figures(n, rate=RATE, aht_s=180, patience_s=patience, threshold_s=20)
    p_ab, wait = _per_customer(n, patience)
    assert f.p_abandon == pytest.approx(p_ab, rel=1e-9)
    assert p_ab == pytest.approx(wait / patience, rel=1e-9)
    assert f.asa_s == pytest.approx(wait, rel=1e-9)


def test_erlang_a_needs_fewer_agents_than_erlang_c_when_callers_abandon() -> None:
    a = erlang.agents_erlang_a(rate=RATE, aht_s=180, patience_s=120, target_sl=0.8, threshold_s=20)
    assert a.agents == 12 and 0 < a.p_abandon < 0.1
    assert (
        a.agents
        < erlang.agents_erlang_c(rate=RATE, aht_s=180, target_sl=0.8, threshold_s=20).agents
    )


def test_erlang_a_works_when_agents_are_fewer_than_the_traffic() -> None:
    f = erlang.erlang_a_figures(5, rate=RATE, aht_s=180, patience_s=60, threshold_s=20)
    assert 0 < f.p_abandon < 1 and f.occupancy <= 1


@pytest.mark.parametrize("patience_s", [30.0, 120.0, 600.0])
@pytest.mark.parametrize(("rate", "aht_s"), [(0.01, 240.0), (0.05, 180.0), (0.2, 120.0)])
@pytest.mark.parametrize(("target", "cap"), [(0.8, 0.85), (0.95, 1.0), (0.5, 0.7)])
def test_erlang_a_search_equals_a_linear_scan(
    rate: float, aht_s: float, patience_s: float, target: float, cap: float
) -> None:
    """Doubling and bisection find the same smallest N as trying every N from 1."""
    goal = {"rate": rate, "aht_s": aht_s, "patience_s": patience_s, "threshold_s": 20}
    n = 1
    while True:
        f = erlang.erlang_a_figures(n, **goal)
        if f.service_level >= target and f.occupancy <= cap:
            break
        n += 1
    got = erlang.agents_erlang_a(**goal, target_sl=target, max_occupancy=cap)
    assert got.agents == n


@pytest.mark.parametrize(("rate", "aht_s"), [(0.05, 180.0), (2.0, 300.0)])
def test_erlang_a_with_endless_patience_staffs_like_erlang_c(rate: float, aht_s: float) -> None:
    """No abandons measured (patience endless): the search never builds the overloaded chains."""
    goal = {"rate": rate, "aht_s": aht_s, "target_sl": 0.8, "threshold_s": 20}
    a = erlang.agents_erlang_a(**goal, patience_s=1e9, max_occupancy=0.85)
    assert a.agents == erlang.agents_erlang_c(**goal, max_occupancy=0.85).agents
