"""Settings of the crm service (environment variables prefixed SB_)."""

from __future__ import annotations

from sbkit.settings import KitSettings


class CrmSettings(KitSettings):
    """The kit's settings with this service's name and defaults."""

    service: str = "crm"
