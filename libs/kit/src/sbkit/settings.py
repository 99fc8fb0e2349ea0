"""Configuration from the environment (pydantic-settings), composed from per-adapter settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_CONFIG = SettingsConfigDict(env_prefix="SB_", extra="ignore", env_file=None)


class DatabaseSettings(BaseSettings):
    """Where a service keeps its tables."""

    model_config = _CONFIG
    database_url: str = Field(
        default="sqlite+aiosqlite:///.data/embedded/{service}.db",
        description="SQLAlchemy async URL; `{service}` is replaced by the service name.",
    )
    db_schema: str | None = Field(
        default=None, description="PostgreSQL schema (defaults to the service name)."
    )
    db_pool_size: int = Field(
        default=10,
        description="PostgreSQL connections per process (and as many overflow); SQLite uses one, "
        "handed out in arrival order.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="Apply migrations at start (embedded/local); Kubernetes uses a Job.",
    )


class BusSettings(BaseSettings):
    """Which event bus, and how consumers retry."""

    model_config = _CONFIG
    bus: Literal["local", "kafka"] = "local"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_replication_factor: int = 1
    topic_partitions: dict[str, int] = Field(
        default_factory=dict, description="Per-topic partition count overrides (JSON)."
    )
    local_bus_path: str = ".data/embedded/bus.db"
    consumer_batch_max: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Most records of one partition a consumer applies in one transaction.",
    )
    retry_attempts: int = 5
    retry_initial_backoff_ms: int = 50
    retry_max_backoff_ms: int = 2000
    drain_timeout_s: float = 20.0
    outbox_poll_ms: int = 500
    bus_stall_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A Kafka consumer group whose committed offsets have not moved for this long "
        "while records wait is called stalled: logged with where it waits, /readyz's consumers "
        "check false, and its consumer replaced.",
    )


class AuthSettings(BaseSettings):
    """Token verification keys (public only in services; the CLI also signs)."""

    model_config = _CONFIG
    auth_key_dir: str = Field(
        default=".data/keys", description="Folder with <kid>.pub.pem/<kid>.key.pem and `current`."
    )
    auth_public_keys: dict[str, str] = Field(
        default_factory=dict, description="kid → Ed25519 public key PEM (overrides the key dir)."
    )
    auth_issuer: str = "switchboard"


class ObservabilitySettings(BaseSettings):
    """Logs and traces."""

    model_config = _CONFIG
    log_level: str = "INFO"
    log_json: bool = True
    otel_exporter: Literal["none", "console"] = "none"


class HttpSettings(BaseSettings):
    """Where the HTTP server listens, and how much one tenant may ask of it."""

    model_config = _CONFIG
    host: str = "127.0.0.1"
    port: int = 8000
    api_rate_per_s: float = Field(
        default=200.0, gt=0, description="Per-tenant sustained API requests/s (per process)."
    )
    api_rate_burst: int = Field(
        default=400, ge=1, description="Per-tenant API burst (token bucket size)."
    )


class KitSettings(DatabaseSettings, BusSettings, AuthSettings, ObservabilitySettings, HttpSettings):
    """Everything the kit needs; each service's settings class extends this."""

    service: str = "switchboard"

    def db_url(self) -> str:
        """The database URL for this service."""
        return self.database_url.replace("{service}", self.service)

    def schema_name(self) -> str | None:
        """The PostgreSQL schema of this service (None on SQLite)."""
        if self.db_url().startswith("sqlite"):
            return None
        return self.db_schema or self.service
