"""Settings of the notifier service (environment variables prefixed SB_)."""

from __future__ import annotations

from pydantic import Field

from sbkit.settings import KitSettings


class NotifierSettings(KitSettings):
    """The kit's settings with this service's name, timer poller and delivery providers."""

    service: str = "notifier"
    notifier_timer_poll_ms: int = 1000
    notifier_timer_batch: int = 200
    notifier_tracking_url: str = "https://track.example.com/{carrier}/{tracking_number}"
    notifier_webhook_url: str = ""
    notifier_webhook_secret: str = ""
    notifier_sms_url: str = ""
    notifier_sms_account: str = ""
    notifier_sms_token: str = ""
    notifier_sms_from: str = ""
    notifier_email_url: str = ""
    notifier_email_key: str = ""
    notifier_email_from: str = "alerts@example.com"
    notifier_http_timeout_ms: int = 5000
    notifier_http_attempts: int = 3
    notifier_private_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Provider destinations allowed although private or loopback (JSON list of host names,"
            " IPs or CIDR networks: on-premise providers, test servers); every other private,"
            " loopback, link-local or metadata address stays refused."
        ),
    )
