"""Request bodies and query parsing of analytics' HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from analytics.domain.lights import Direction
from analytics.service_layer.errors import InvalidQuery
from sbcontracts.events.common import EARLIEST, LATEST

INTERVALS = {"15m": 15, "30m": 30, "1h": 60, "1d": 1440}


class ThresholdIn(BaseModel):
    """A KPI's traffic light: green at / red at, and which way is better."""

    model_config = ConfigDict(extra="forbid")
    green_at: float
    red_at: float
    direction: Direction


class Thresholds(BaseModel):
    """Thresholds by KPI name."""

    model_config = ConfigDict(extra="forbid")
    thresholds: dict[str, ThresholdIn] = Field(min_length=1, max_length=100)


def aware(at: datetime) -> datetime:
    """A query datetime as aware UTC (naive means UTC); 422 outside 1970-9000, so that the
    ranges and windows computed from it (a day before, an interval after) stay datetimes."""
    try:
        utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        utc = EARLIEST - timedelta(days=1)
    if not EARLIEST <= utc < LATEST:
        raise InvalidQuery(f"{at.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")
    return utc


def interval(name: str | None) -> timedelta | None:
    """`15m`, `30m`, `1h`, `1d` or none (one total over the range)."""
    if name is None or name == "total":
        return None
    if name not in INTERVALS:
        raise InvalidQuery(f"unknown interval: {name}", valid=[*INTERVALS, "total"])
    return timedelta(minutes=INTERVALS[name])


def kpi_names(values: list[str], default: tuple[str, ...]) -> list[str]:
    """KPI names from repeated and comma-separated `kpi` parameters."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    return names or list(default)
