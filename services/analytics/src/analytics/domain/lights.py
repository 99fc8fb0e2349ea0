"""Traffic lights: per KPI a "green at" and a "red at" threshold with a direction."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Whether a higher value is better (service level) or worse (abandonment, AHT, FRT)."""

    HIGHER = "higher_is_better"
    LOWER = "lower_is_better"


class Colour(StrEnum):
    """The light of one KPI value; `none` when there is no value or no threshold."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"
    NONE = "none"


_GREEN, _AMBER, _RED, _NONE = (
    c.value for c in (Colour.GREEN, Colour.AMBER, Colour.RED, Colour.NONE)
)


class InvalidThreshold(ValueError):
    """Green and red thresholds that contradict their direction."""


@dataclass(frozen=True)
class Threshold:
    """Green at or beyond `green_at`, red at or beyond `red_at`, amber between."""

    green_at: float
    red_at: float
    direction: Direction

    def __post_init__(self) -> None:
        better = (
            self.green_at >= self.red_at
            if self.direction is Direction.HIGHER
            else (self.green_at <= self.red_at)
        )
        if not better:
            raise InvalidThreshold(f"green_at {self.green_at} is worse than red_at {self.red_at}")

    def colour(self, value: float | None) -> Colour:
        """The light of a value."""
        return Colour(self.light(value))

    def light(self, value: float | None) -> str:
        """The light of a value as its plain string (`Colour`'s value; an answer's rows ask it
        for thousands of values, and an enum member's `.value` is a slow property)."""
        if value is None:
            return _NONE
        sign = 1 if self.direction is Direction.HIGHER else -1
        if sign * value >= sign * self.green_at:
            return _GREEN
        if sign * value <= sign * self.red_at:
            return _RED
        return _AMBER


H, L = Direction.HIGHER, Direction.LOWER
DEFAULTS: dict[str, Threshold] = {
    "service_level": Threshold(0.8, 0.7, H),
    "abandonment_rate": Threshold(0.05, 0.1, L),
    "asa": Threshold(20, 60, L),
    "aht": Threshold(300, 480, L),
    "frt": Threshold(3600, 14400, L),
    "frt_business": Threshold(3600, 14400, L),
    "resolution_time": Threshold(86400, 259200, L),
    "resolution_time_business": Threshold(28800, 86400, L),
    "csat": Threshold(0.85, 0.7, H),
    "nps": Threshold(30, 0, H),
    "ces": Threshold(5.5, 4.5, H),
    "negative_sentiment_share": Threshold(0.2, 0.4, L),
    "occupancy": Threshold(0.85, 0.9, L),  # above the usual 85-90 % cap agents burn out
    "fcr": Threshold(0.75, 0.6, H),
    "fcr_final": Threshold(0.75, 0.6, H),
    "alert_ahead_share": Threshold(0.8, 0.5, H),
}


def threshold_of(kpi: str, overrides: dict[str, Threshold]) -> Threshold | None:
    """A KPI's thresholds: the tenant's, else the defaults (None: no light)."""
    return overrides.get(kpi) or DEFAULTS.get(kpi)


def colour_of(kpi: str, value: float | None, overrides: dict[str, Threshold]) -> Colour:
    """A KPI value's light under the tenant's thresholds, else the defaults."""
    threshold = threshold_of(kpi, overrides)
    return threshold.colour(value) if threshold else Colour.NONE
