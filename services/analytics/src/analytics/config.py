"""Settings of the analytics service (environment variables prefixed SB_)."""

from __future__ import annotations

from pydantic import Field

from sbkit.settings import KitSettings


class AnalyticsSettings(KitSettings):
    """The kit's settings with this service's name and defaults."""

    service: str = "analytics"
    retention_days: int = 400  # the longest range a KPI query may span
    live_refresh_ms: int = 1000  # SSE and Prometheus gauges re-read the current interval this often
    gauge_slow_refresh_ms: int = Field(
        default=10_000,
        ge=100,
        description="Gauges of backlog, aging, final FCR and occupancy (one KPI read per active"
        " tenant) re-read the current interval this often",
    )
