"""Settings of the routing service (environment variables prefixed SB_)."""

from __future__ import annotations

from sbkit.settings import KitSettings


class RoutingSettings(KitSettings):
    """The kit's settings with this service's name and defaults."""

    service: str = "routing"
