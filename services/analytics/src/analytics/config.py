"""Settings of the analytics service (environment variables prefixed SB_)."""

from __future__ import annotations

from sbkit.settings import KitSettings


class AnalyticsSettings(KitSettings):
    """The kit's settings with this service's name and defaults."""

    service: str = "analytics"
    retention_days: int = 400  # the longest range a KPI query may span
    live_refresh_ms: int = 1000  # SSE and Prometheus gauges re-read the current interval this often
