"""The local bus: a partitioned log in SQLite (a file in embedded mode, in memory for unit tests).

Same semantics as the Kafka backend: partitions by key, order per key, consumer groups with
offsets committed after the handler (or batch handler), redelivery after a crash, bounded retries, DLQ. A file
log means an acknowledged publish survives `kill -9`, and a second process (the CLI) can
append records that the running server then reads.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sqlite3
import time
import zlib
from collections.abc import Sequence

import structlog

from sbkit.bus.delivery import chunks, handle_chunk
from sbkit.bus.ports import OutgoingRecord, Record, Subscription
from sbkit.observability import CONSUMER_LAG, RECORDS_HANDLED

log = structlog.get_logger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
  topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL, key TEXT,
  value BLOB NOT NULL, headers TEXT NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY (topic, part, off));
CREATE TABLE IF NOT EXISTS offsets (
  grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, part));
"""


def partition_for(key: str, partitions: int) -> int:
    """Stable key → partition mapping."""
    return zlib.crc32(key.encode()) % partitions


class LocalBus:
    """A Kafka-like log on SQLite, for one process (plus occasional writers such as the CLI)."""

    def __init__(
        self,
        path: str = ":memory:",
        *,
        partitions: dict[str, int] | None = None,
        default_partitions: int = 3,
        poll_interval_s: float = 0.2,
        batch_size: int = 200,
    ) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._partitions = dict(partitions or {})
        self._default_partitions = default_partitions
        self._poll = poll_interval_s
        self._batch = batch_size
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._started = False
        self._stopping = False

    def partitions(self, topic: str) -> int:
        """Partition count of a topic."""
        base = topic.removesuffix(".dlq")
        return self._partitions.get(topic, self._partitions.get(base, self._default_partitions))

    async def start(self) -> None:
        """Start the consumers registered so far."""
        self._started = True
        self._stopping = False
        for sub in self._subs:
            self._spawn(sub)

    def subscribe(self, subscription: Subscription) -> None:
        """Register a consumer group."""
        self._subs.append(subscription)
        if self._started:
            self._spawn(subscription)

    def _spawn(self, sub: Subscription) -> None:
        for topic in sub.topics:
            for part in range(self.partitions(topic)):
                self._tasks.append(asyncio.create_task(self._consume(sub, topic, part)))

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Append records atomically; durable when this returns (file mode)."""
        if not records:
            return
        now = int(time.time() * 1000)
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for r in records:
                part = partition_for(r.key, self.partitions(r.topic))
                (nxt,) = cur.execute(
                    "SELECT COALESCE(MAX(off) + 1, 0) FROM records WHERE topic=? AND part=?",
                    (r.topic, part),
                ).fetchone()
                headers = json.dumps([[k, base64.b64encode(v).decode()] for k, v in r.headers])
                cur.execute(
                    "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
                    (r.topic, part, nxt, r.key, r.value, headers, now),
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self._wake.set()

    def _fetch(self, topic: str, part: int, start: int) -> list[Record]:
        rows = self._db.execute(
            "SELECT off, key, value, headers, ts FROM records WHERE topic=? AND part=? AND off>=?"
            " ORDER BY off LIMIT ?",
            (topic, part, start, self._batch),
        ).fetchall()
        return [
            Record(
                topic=topic,
                partition=part,
                offset=off,
                key=key,
                value=bytes(value),
                headers=tuple((k, base64.b64decode(v)) for k, v in json.loads(hdrs)),
                timestamp_ms=ts,
            )
            for off, key, value, hdrs, ts in rows
        ]

    def committed(self, group: str, topic: str, part: int) -> int:
        """The committed offset of a group (0 when none)."""
        row = self._db.execute(
            "SELECT off FROM offsets WHERE grp=? AND topic=? AND part=?", (group, topic, part)
        ).fetchone()
        return int(row[0]) if row else 0

    def _commit(self, group: str, topic: str, part: int, off: int) -> None:
        self._db.execute(
            "INSERT INTO offsets VALUES (?,?,?,?) ON CONFLICT(grp, topic, part)"
            " DO UPDATE SET off=excluded.off",
            (group, topic, part, off),
        )

    async def _consume(self, sub: Subscription, topic: str, part: int) -> None:
        position = self.committed(sub.group, topic, part) if sub.group else 0
        while not self._stopping:
            batch = self._fetch(topic, part, position)
            if not batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                continue
            for chunk in chunks(sub, batch):
                await handle_chunk(sub, chunk, self.publish)
                position = chunk[-1].offset + 1
                RECORDS_HANDLED.labels(sub.group or "-", topic).inc(len(chunk))
                if sub.group:
                    self._commit(sub.group, topic, part, position)
                if self._stopping:
                    break
            if sub.group:
                CONSUMER_LAG.labels(sub.group, topic, str(part)).set(
                    self._end(topic, part) - position
                )
            await asyncio.sleep(0)

    def _end(self, topic: str, part: int) -> int:
        (end,) = self._db.execute(
            "SELECT COALESCE(MAX(off) + 1, 0) FROM records WHERE topic=? AND part=?", (topic, part)
        ).fetchone()
        return int(end)

    def read_all(self, topic: str) -> list[Record]:
        """Every record of a topic in (partition, offset) order (for tools and tests)."""
        out: list[Record] = []
        for part in range(self.partitions(topic)):
            start = 0
            while chunk := self._fetch(topic, part, start):
                out.extend(chunk)
                start = chunk[-1].offset + 1
        return out

    async def read_topic(self, topic: str) -> list[Record]:
        """Every record of a topic as it is now."""
        return self.read_all(topic)

    async def stop_consuming(self) -> None:
        """The same as `stop`: publishing needs no connection here."""
        await self.stop()

    async def stop(self) -> None:
        """Let in-flight records finish (their offsets are committed), then stop."""
        self._stopping = True
        self._wake.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._started = False

    async def abort(self) -> None:
        """Stop at once without finishing or committing anything (what `kill -9` does)."""
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._started = False

    def close(self) -> None:
        """Close the log file."""
        self._db.close()

    async def ping(self) -> bool:
        """The log is reachable."""
        self._db.execute("SELECT 1").fetchone()
        return True

    def consumers_ready(self) -> bool:
        """Every registered group is running."""
        return self._started

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Uncommitted records per (group, topic, partition)."""
        out: dict[tuple[str, str, int], int] = {}
        for sub in self._subs:
            if not sub.group:
                continue
            for topic in sub.topics:
                for part in range(self.partitions(topic)):
                    out[(sub.group, topic, part)] = self._end(topic, part) - self.committed(
                        sub.group, topic, part
                    )
        return out
