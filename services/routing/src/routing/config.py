"""Settings of the routing service (environment variables prefixed SB_)."""

from __future__ import annotations

from sbkit.settings import KitSettings


class RoutingSettings(KitSettings):
    """The kit's settings with this service's name and routing's own knobs."""

    service: str = "routing"
    reopen_window_s: int = 3 * 24 * 3600
    offline_grace_s: int = 120
    timer_poll_ms: int = 1000
    timer_batch: int = 200
