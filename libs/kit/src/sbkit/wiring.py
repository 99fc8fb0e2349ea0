"""Building the shared adapters from settings: the bus and the token verifier."""

from __future__ import annotations

from pathlib import Path

from sbcontracts.topics import ALL_TOPICS
from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.kafka import KafkaBus, TopicSpec
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Bus
from sbkit.settings import KitSettings


def topic_specs(settings: KitSettings) -> list[TopicSpec]:
    """Every topic of the registry with its configured partition count."""
    return [
        TopicSpec(t.name, settings.topic_partitions.get(t.name, t.partitions), t.retention_ms)
        for t in ALL_TOPICS
    ]


def build_bus(settings: KitSettings, *, background_connect: bool = True) -> Bus:
    """The Kafka bus in the stack, the local log in embedded mode.

    A service's bus connects in the background (it starts, reports not ready and keeps what
    it accepts in its outbox while Kafka is unreachable); tools pass False to fail at once."""
    specs = topic_specs(settings)
    if settings.bus == "kafka":
        return KafkaBus(
            settings.kafka_bootstrap,
            client_id=f"sb-{settings.service}",
            topics=specs,
            replication_factor=settings.kafka_replication_factor,
            drain_timeout_s=settings.drain_timeout_s,
            connect_in_background=background_connect,
            stall_after_s=settings.bus_stall_after_s,
        )
    Path(settings.local_bus_path).parent.mkdir(parents=True, exist_ok=True)
    return LocalBus(settings.local_bus_path, partitions={s.name: s.partitions for s in specs})


def build_verifier(settings: KitSettings) -> TokenVerifier:
    """A verifier with this deployment's public keys."""
    ring = Keyring.load(settings.auth_key_dir, settings.auth_public_keys)
    return TokenVerifier(ring, issuer=settings.auth_issuer)
