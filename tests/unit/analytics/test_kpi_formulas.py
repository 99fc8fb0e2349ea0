"""KPI formulas on summed components, traffic lights and the quantile sketch."""

from __future__ import annotations

import random

import pytest

from analytics.domain import components as comp
from analytics.domain.kpis import KPIS, Params, Totals, UnknownChoice, check_names, evaluate
from analytics.domain.lights import Colour, Direction, InvalidThreshold, Threshold, colour_of
from analytics.domain.sketch import ALPHA, LogHistogram


def _totals(*increments: list[comp.Increment]) -> Totals:
    t = Totals()
    for batch in increments:
        for inc in batch:
            t.add(inc.name, inc.bin, inc.value)
    return t


def _calls() -> Totals:
    """4 answered (10 s, 20 s, 20.001 s, 40 s), abandoned at 3 s, 15 s and 60 s, 8 offered."""
    answered = [comp.call_answered(ms) for ms in (10_000, 20_000, 20_001, 40_000)]
    abandoned = [comp.call_abandoned(ms) for ms in (3_000, 15_000, 60_000)]
    offered = [comp.call_offered() for _ in range(8)]
    return _totals(*answered, *abandoned, *offered)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("F1", 4 / 7), ("F2", 2 / 4), ("F3", 2 / 7), ("F4", 2 / 5), ("F5", 3 / 7)],
)
def test_each_service_level_variant(variant: str, expected: float) -> None:
    sl = KPIS["service_level"](_calls(), Params(variant=variant, threshold_s=20, short_abandon_s=5))
    assert sl == pytest.approx(expected, abs=1e-12)


def test_threshold_is_read_time_and_exact_to_the_millisecond() -> None:
    t = _calls()
    assert KPIS["service_level"](t, Params(variant="F2", threshold_s=21)) == 3 / 4
    assert KPIS["service_level"](t, Params(variant="F2", threshold_s=9)) == 0


def test_abandonment_excludes_short_abandons_from_both_sides() -> None:
    assert KPIS["abandonment_rate"](_calls(), Params(short_abandon_s=5)) == 2 / 7
    assert KPIS["abandonment_rate"](_calls(), Params(short_abandon_s=0)) == 3 / 8


def test_asa_and_aht_are_ratios_of_sums_in_seconds() -> None:
    t = _calls()
    t.merge(_totals(comp.call_completed(talk_ms=100_000, hold_ms=20_000, wrap_ms=30_000)))
    t.merge(_totals(comp.call_completed(talk_ms=50_000, hold_ms=0, wrap_ms=0)))
    assert KPIS["asa"](t, Params()) == pytest.approx(90.001 / 4)
    assert KPIS["aht"](t, Params()) == pytest.approx(100.0)


def test_surveys_csat_top2_nps_and_ces() -> None:
    t = _totals(
        *(comp.survey("csat", s) for s in (5, 4, 3, 1)),
        *(comp.survey("nps", s) for s in (10, 9, 8, 6, 0)),
        *(comp.survey("ces", s) for s in (7, 5, 3)),
    )
    values = evaluate(["csat", "nps", "ces"], t, Params())
    assert values == {"csat": 0.5, "nps": pytest.approx(0.0), "ces": 5.0}


def test_survey_score_outside_its_scale_is_refused() -> None:
    with pytest.raises(comp.InvalidScore):
        comp.survey("csat", 0)


def test_tickets_frt_resolution_backlog_and_sentiment() -> None:
    t = _totals(
        comp.ticket_opened(),
        comp.ticket_opened(),
        comp.first_response(60_000, 30_000),
        comp.first_response(120_000, None),
        comp.ticket_resolved(3_600_000, 1_800_000),
        comp.ticket_reopened(),
        comp.ticket_classified("billing", "negative"),
        comp.ticket_classified("returns", "neutral"),
    )
    v = evaluate(["frt", "frt_business", "resolution_time", "backlog"], t, Params())
    assert v == {"frt": 90.0, "frt_business": 30.0, "resolution_time": 3600.0, "backlog": 2.0}
    assert KPIS["negative_sentiment_share"](t, Params()) == 0.5
    assert KPIS["aht"](t, Params()) is None


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(UnknownChoice) as err:
        check_names(["service_level", "happiness"], "F1")
    assert err.value.given == ["happiness"] and "nps" in err.value.valid
    with pytest.raises(UnknownChoice) as err:
        check_names(["nps"], "F9")
    assert err.value.valid == ["F1", "F2", "F3", "F4", "F5"]


def test_lights_follow_the_direction() -> None:
    sl = Threshold(0.8, 0.7, Direction.HIGHER)
    assert [sl.colour(v) for v in (0.9, 0.8, 0.75, 0.7, None)] == [
        Colour.GREEN,
        Colour.GREEN,
        Colour.AMBER,
        Colour.RED,
        Colour.NONE,
    ]
    aht = Threshold(300, 480, Direction.LOWER)
    assert [aht.colour(v) for v in (200, 400, 500)] == [Colour.GREEN, Colour.AMBER, Colour.RED]
    assert colour_of("aht", 200, {"aht": Threshold(100, 150, Direction.LOWER)}) == Colour.RED
    with pytest.raises(InvalidThreshold):
        Threshold(0.7, 0.8, Direction.HIGHER)


def test_sketch_quantiles_are_within_relative_accuracy_and_merge_exactly() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(10, 1.5)) for _ in range(5000)]
    whole = LogHistogram.of(values)
    parts = LogHistogram.of(values[:1234])
    parts.merge(LogHistogram.of(values[1234:]))
    assert parts.bins == whole.bins
    for q in (0.5, 0.9, 0.99):
        exact = sorted(values)[int(q * (len(values) - 1))]
        assert abs((whole.quantile(q) or 0) - exact) <= ALPHA * exact + 1e-9
    assert LogHistogram.from_json(whole.to_json()).bins == whole.bins
    assert LogHistogram().quantile(0.5) is None


@pytest.mark.parametrize(
    ("kpi", "value", "colour"),
    [
        ("occupancy", 0.8, Colour.GREEN),
        ("occupancy", 0.95, Colour.RED),
        ("fcr", 0.7, Colour.AMBER),
        ("alert_ahead_share", 0.4, Colour.RED),
    ],
)
def test_new_tiles_have_default_lights(kpi: str, value: float, colour: Colour) -> None:
    assert colour_of(kpi, value, {}) is colour
