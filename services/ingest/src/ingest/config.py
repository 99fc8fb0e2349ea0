"""Settings of the ingest service (environment variables prefixed SB_)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from sbkit.settings import KitSettings


class IngestSettings(KitSettings):
    """The kit's settings with this service's name and defaults."""

    service: str = "ingest"
    ingest_max_body_bytes: int = Field(
        default=2 * 1024 * 1024, description="Request bodies over this answer 413 (raw MIME too)."
    )
    ingest_rate_per_s: float = Field(default=200.0, description="Per-tenant sustained requests/s.")
    ingest_rate_burst: int = Field(default=400, description="Per-tenant burst (token bucket size).")
    ingest_languages: list[str] = Field(
        default_factory=lambda: ["pl", "ru", "ro", "en"],
        description="ISO 639-1 languages detected (channels may add their own).",
    )
    ingest_replay_window_s: int = Field(
        default=300, description="Signed timestamps older than this are refused (Mailgun)."
    )
    ingest_public_base_url: str | None = Field(
        default=None,
        description="External base URL (https://host) Twilio signs; defaults to the request URL.",
    )
    ingest_commit_groups_in_flight: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Webhook group commits running at once (requests arriving meanwhile join the next).",
    )
    ingest_secrets_key: SecretStr | None = Field(
        default=None,
        description="Fernet key sealing channel secrets at rest (Fernet.generate_key()); unset = plain.",
    )
