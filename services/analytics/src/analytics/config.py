"""Settings of the analytics service (environment variables prefixed SB_)."""

from __future__ import annotations

from pydantic import Field

from sbkit.settings import KitSettings


class AnalyticsSettings(KitSettings):
    """The kit's settings with this service's name and defaults."""

    service: str = "analytics"
    # a poll (up to 1,000 records over the partitions) folded in one transaction: a batch's
    # rollup rows (a tenant's days and months) are mostly the same rows however many events it
    # has, so PostgreSQL's CPU per event falls (bench, 3 alternated pairs: 0.21-0.22 -> 0.17-0.18
    # ms, 3,087-3,157 -> 3,449-3,598 events/s); transactions of several partitions wait on the
    # same rollup rows anyway
    consumer_batch_max: int = Field(
        default=1000,
        ge=1,
        le=5000,
        description="Most records of one partition a consumer applies in one transaction"
        " (analytics: a whole poll of up to 1,000 records).",
    )
    retention_days: int = 400  # the longest range a KPI query may span
    live_refresh_ms: int = 1000  # SSE and Prometheus gauges re-read the current interval this often
    gauge_slow_refresh_ms: int = Field(
        default=10_000,
        ge=100,
        description="Gauges of backlog, aging, final FCR and occupancy (one KPI read per active"
        " tenant) re-read the current interval this often",
    )
