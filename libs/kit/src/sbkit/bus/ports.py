"""The bus port: records, handlers, retry policy and the interface both backends implement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingRecord:
    """A record to publish; the key decides the partition and so the order."""

    topic: str
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Record:
    """A record as consumed, with its position in the log."""

    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        """The last value of a header, or None."""
        found = None
        for k, v in self.headers:
            if k == name:
                found = v
        return found


Handler = Callable[[Record], Awaitable[None]]
BatchHandler = Callable[[Sequence[Record]], Awaitable[None]]


class PoisonMessage(Exception):
    """Raised by a handler for a record that can never succeed: it goes to the DLQ at once."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff for transient handler errors."""

    attempts: int = 5
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 2.0


@dataclass(frozen=True)
class Subscription:
    """A consumer group reading topics with one handler.

    group=None means a broadcast reader: every process reads the whole topic from the
    beginning and commits nothing (used for small control topics).

    With a `batch_handler`, each partition's polled records go to it in chunks of up to
    `max_batch`, in order; the offsets are committed after it returns. If it raises any
    Exception, that chunk is handled again one record at a time by `handler` (poison → DLQ,
    transient → bounded retries), so a batch handler must be all-or-nothing (one transaction).
    The Kafka bus may first give it the records of several partitions at once (at most
    `max_batch`; each partition's in order, one partition after another), falling back to the
    partitions one by one if that fails: a batch spans keys, never reorders one key's records.
    """

    group: str | None
    topics: Sequence[str]
    handler: Handler
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    poison_types: tuple[type[BaseException], ...] = (PoisonMessage,)
    batch_handler: BatchHandler | None = None
    max_batch: int = 500


class Bus(Protocol):
    """An at-least-once, per-key-ordered log with consumer groups and dead-letter topics."""

    async def start(self) -> None:
        """Connect, create topics and start the consumers subscribed so far."""

    async def stop_consuming(self) -> None:
        """Drain in-flight records and commit what was handled; `publish` keeps working
        (a service flushes its outbox after this, before `stop`)."""

    async def stop(self) -> None:
        """Drain in-flight records, commit what was handled and disconnect."""

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Publish records durably (returns only once the log has accepted all of them)."""

    def subscribe(self, subscription: Subscription) -> None:
        """Register a consumer group; it starts with the bus (or at once if already started)."""

    async def ping(self) -> bool:
        """Whether the bus is reachable."""

    def consumers_ready(self) -> bool:
        """Whether every consumer group has its partitions assigned."""

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Records not yet committed per (group, topic, partition)."""

    async def read_topic(self, topic: str) -> list[Record]:
        """Every record of a topic as it is now (for tools: DLQ listing, tests)."""
