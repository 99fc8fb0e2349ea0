"""The Kafka backend (aiokafka): idempotent acks=all producer, manual commits after the handler."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import structlog
from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import OffsetAndMetadata

from sbkit.bus.delivery import chunks, handle_chunk, try_batch
from sbkit.bus.ports import OutgoingRecord, Record, Subscription
from sbkit.bus.watchdog import GroupProgress, await_chain, client_tasks
from sbkit.observability import CONSUMER_LAG, CONSUMER_STALLS, RECORDS_HANDLED

log = structlog.get_logger(__name__)

TOPIC_ALREADY_EXISTS = 36
_PARTITIONER = DefaultPartitioner()  # the producer's default: murmur2 of the key, as Java's


class _Joined(ConsumerRebalanceListener):
    """Remembers that the group's first rebalance completed (with or without partitions)."""

    def __init__(self) -> None:
        self.done = False

    async def on_partitions_revoked(self, revoked: object) -> None:
        """Nothing to do: offsets are committed after every batch."""

    async def on_partitions_assigned(self, assigned: object) -> None:
        """The member is in the group now."""
        self.done = True


class TopicSpec:
    """What to create for a topic (and its DLQ)."""

    def __init__(self, name: str, partitions: int, retention_ms: int = -1) -> None:
        self.name = name
        self.partitions = partitions
        self.retention_ms = retention_ms


class KafkaBus:
    """The bus on a real Kafka cluster."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "switchboard",
        topics: Sequence[TopicSpec] = (),
        replication_factor: int = 1,
        max_poll_records: int = 1000,
        linger_ms: int = 5,
        drain_timeout_s: float = 20.0,
        connect_in_background: bool = False,
        stall_after_s: float = 60.0,
        watch_every_s: float = 10.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._topics = list(topics)
        self._rf = replication_factor
        self._max_poll = max_poll_records
        self._linger = linger_ms
        self._drain = drain_timeout_s
        self._background = connect_in_background
        self._connector: asyncio.Task[None] | None = None
        self._connected = False
        self._producer: AIOKafkaProducer | None = None
        self._subs: list[Subscription] = []
        self._consumers: dict[int, AIOKafkaConsumer] = {}
        self._joined: dict[int, _Joined] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stall_after = stall_after_s
        self._watch_every = watch_every_s
        self._progress: dict[int, GroupProgress] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._starting: set[int] = set()
        self._handled: dict[int, dict[tuple[str, int], int]] = {}  # next offset, per partition
        self._stopping = False

    async def start(self) -> None:
        """Create topics, start the producer and every consumer group.

        With `connect_in_background` an unreachable cluster is not an error: after a first
        failed attempt this returns and keeps connecting (backoff up to 5 s) until it succeeds
        or the bus is stopped; meanwhile `ping()` and `consumers_ready()` are false and
        `publish()` raises, so a service starts, answers /healthz and /readyz, and its outbox
        keeps what it accepts.
        """
        self._stopping = False
        if not self._background:
            await self._connect()
            return
        if not await self._attempt(retry_in_s=0.5):
            self._connector = asyncio.create_task(self._connect_until_up())

    async def _connect(self) -> None:
        await self.ensure_topics(self._topics)
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger,
            max_batch_size=1024 * 1024,
            max_request_size=2 * 1024 * 1024,
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer
        spawned = 0
        while spawned < len(self._subs):  # subscriptions may be added while this awaits
            await self._spawn(self._subs[spawned])
            spawned += 1
        self._connected = True
        self._watchdog = asyncio.create_task(self._watch())

    async def _attempt(self, *, retry_in_s: float) -> bool:
        """One connection attempt; a failure is logged and leaves no half-started client."""
        try:
            await self._connect()
        except Exception as exc:  # noqa: BLE001 - an unreachable cluster is retried
            log.warning("bus.connect_failed", error=type(exc).__name__, retry_in_s=retry_in_s)
            await self._close_clients()
            return False
        return True

    async def _connect_until_up(self) -> None:
        delay = 0.5
        while not self._stopping:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            if not self._stopping and await self._attempt(retry_in_s=delay):
                log.info("bus.connected", bootstrap=self._bootstrap)
                return

    async def ensure_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Create each topic and its DLQ if missing."""
        if not specs:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id=self._client_id)
        await admin.start()
        try:
            new = []
            for s in specs:
                cfg = {"retention.ms": str(s.retention_ms)}
                new.append(NewTopic(s.name, s.partitions, self._rf, topic_configs=cfg))
                new.append(NewTopic(s.name + ".dlq", s.partitions, self._rf, topic_configs=cfg))
            resp = await admin.create_topics(new)
            for name, code, *_ in resp.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"cannot create topic {name}: error {code}")
        finally:
            await admin.close()

    def subscribe(self, subscription: Subscription) -> None:
        """Register a consumer group (started with the bus)."""
        self._subs.append(subscription)
        if self._connected:
            asyncio.get_running_loop().create_task(self._spawn(subscription))

    async def _spawn(self, sub: Subscription) -> None:
        self._starting.add(id(sub))
        try:
            await self._start_consumer(sub)
        finally:
            self._starting.discard(id(sub))

    async def _start_consumer(self, sub: Subscription) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=sub.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        try:
            await consumer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await consumer.stop()
            raise
        if sub.group:
            joined = _Joined()
            self._joined[id(sub)] = joined
            consumer.subscribe(list(sub.topics), listener=joined)
        else:
            tps = []
            for t in sub.topics:
                parts = await self._partitions_of(consumer, t)
                tps += [TopicPartition(t, p) for p in parts]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
        self._consumers[id(sub)] = consumer
        self._tasks[id(sub)] = asyncio.create_task(self._run(sub, consumer))

    @staticmethod
    async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
        for _ in range(50):
            parts = consumer.partitions_for_topic(topic)
            if parts:
                return set(parts)
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {topic} has no partitions")

    async def _run(self, sub: Subscription, consumer: AIOKafkaConsumer) -> None:
        try:
            while not self._stopping:
                try:
                    batches = await consumer.getmany(timeout_ms=200, max_records=self._max_poll)
                except Exception as exc:  # noqa: BLE001 - broker outages are retried, not fatal
                    log.warning("bus.fetch_failed", group=sub.group, error=type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                if batches:
                    await self._handle_batches(sub, consumer, batches)
        except Exception:
            # never silently: the group would lose this member while /readyz says ready
            log.exception("bus.consumer_died", group=sub.group)
            raise
        finally:
            with contextlib.suppress(Exception):
                await _bounded(consumer.stop(), "consumer")

    async def _watch(self) -> None:
        """Every `watch_every_s`, look at each group from outside its consumer (see
        sbkit.bus.watchdog); replace a stalled consumer, and any consumer that is missing."""
        admin: AIOKafkaAdminClient | None = None
        probe: AIOKafkaConsumer | None = None
        try:
            while not self._stopping:
                await asyncio.sleep(self._watch_every)
                try:
                    if admin is None or probe is None:
                        admin, probe = await self._watch_clients()
                    for sub in list(self._subs):
                        await self._revive(sub)
                        await self._look_at(sub, admin, probe)
                except Exception as exc:  # noqa: BLE001 - no verdict while the cluster is away
                    log.info("bus.watch_skipped", error=type(exc).__name__)
                    await _close_watch_clients(admin, probe)  # fresh ones next time
                    admin = probe = None
        finally:
            await _close_watch_clients(admin, probe)

    async def _watch_clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, client_id=f"{self._client_id}-watchdog"
        )
        probe = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=f"{self._client_id}-watchdog",
            group_id=None,
            enable_auto_commit=False,
        )
        try:
            await admin.start()
            await probe.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await admin.close()
            with contextlib.suppress(Exception):
                await probe.stop()
            raise
        return admin, probe

    async def _look_at(
        self, sub: Subscription, admin: AIOKafkaAdminClient, probe: AIOKafkaConsumer
    ) -> None:
        committed, lag = await asyncio.wait_for(self._position(sub, admin, probe), 10.0)
        progress = self._progress.setdefault(id(sub), GroupProgress(self._stall_after))
        if progress.observe(committed, lag, time.monotonic()):
            await self._replace_stalled(sub, lag)

    async def _position(
        self, sub: Subscription, admin: AIOKafkaAdminClient, probe: AIOKafkaConsumer
    ) -> tuple[dict[tuple[str, int], int], int]:
        """Where the subscription stands per partition, and the records past that: a group's
        committed offsets (the truth about what will not be read again), or for a group-less
        reader (the control topic) the offsets this process handled up to. Where there is none
        yet, the log's start, which is where it begins."""
        tps = [
            TopicPartition(t, p) for t in sub.topics for p in await self._partitions_of(probe, t)
        ]
        if sub.group:
            offsets = await admin.list_consumer_group_offsets(sub.group)
            stored = {(tp.topic, tp.partition): o.offset for tp, o in offsets.items()}
        else:
            stored = self._handled.get(id(sub), {})
        ends = await probe.end_offsets(tps)
        fresh = [tp for tp in tps if stored.get((tp.topic, tp.partition), -1) < 0]
        starts = await probe.beginning_offsets(fresh) if fresh else {}
        committed = {
            (tp.topic, tp.partition): starts[tp]
            if tp in starts
            else stored[(tp.topic, tp.partition)]
            for tp in tps
        }
        lag = sum(max(0, ends[tp] - committed[(tp.topic, tp.partition)]) for tp in tps)
        return committed, lag

    def _forget(
        self, sub: Subscription
    ) -> tuple[asyncio.Task[None] | None, AIOKafkaConsumer | None]:
        """Drop what the bus holds of `sub`'s consumer (before starting a new one)."""
        self._joined.pop(id(sub), None)
        return self._tasks.pop(id(sub), None), self._consumers.pop(id(sub), None)

    async def _revive(self, sub: Subscription) -> None:
        """Start a consumer again whose task ended (it logged `bus.consumer_died`) or whose
        replacement failed to start."""
        task = self._tasks.get(id(sub))
        if self._stopping or id(sub) in self._starting or (task is not None and not task.done()):
            return
        self._forget(sub)
        log.warning("bus.consumer_restarted", group=sub.group, topics=list(sub.topics))
        await self._spawn(sub)

    async def _replace_stalled(self, sub: Subscription, lag: int) -> None:
        task, consumer = self._forget(sub)
        CONSUMER_STALLS.labels(sub.group or "-").inc()
        log.error(
            "bus.consumer_stalled",
            group=sub.group,
            topics=list(sub.topics),
            lag=lag,
            stalled_s=self._stall_after,
            assignment=sorted(f"{tp.topic}:{tp.partition}" for tp in consumer.assignment())
            if consumer is not None
            else [],
            waiting_at=await_chain(task) if task is not None else [],
            client_tasks=client_tasks(task),
        )
        if task is not None:
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2 * CLOSE_TIMEOUT_S)
            if not done and consumer is not None:  # cancellation did not reach the consumer
                await _bounded(consumer.stop(), "consumer")
        if not self._stopping:
            await self._spawn(sub)

    async def _handle_batches(
        self,
        sub: Subscription,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        done: list[int | BaseException]
        if await self._handle_together(sub, batches):
            done = [recs[-1].offset + 1 for recs in batches.values()]
        else:
            done = await asyncio.gather(
                *(self._handle_partition(sub, recs) for recs in batches.values()),
                return_exceptions=True,
            )
        commits: dict[TopicPartition, OffsetAndMetadata] = {}
        # A rebalance while the batch was handled (a broker restart, a member joining) may
        # have revoked partitions: their new owner re-reads from the committed offset. Seeking
        # or reading the highwater of one raises, which used to end this consumer silently.
        assigned = consumer.assignment()
        handled = self._handled.setdefault(id(sub), {})
        for (tp, recs), result in zip(batches.items(), done, strict=True):
            if tp not in assigned:
                log.info("bus.partition_revoked", topic=tp.topic, partition=tp.partition)
                continue
            if isinstance(result, BaseException):
                # e.g. the DLQ publish failed: re-read the batch; handlers are idempotent
                log.warning("bus.partition_failed", topic=tp.topic, error=type(result).__name__)
                consumer.seek(tp, recs[0].offset)
                continue
            commits[tp] = OffsetAndMetadata(result, "")
            handled[(tp.topic, tp.partition)] = result
            hw = consumer.highwater(tp)
            if sub.group and hw is not None:
                CONSUMER_LAG.labels(sub.group, tp.topic, str(tp.partition)).set(hw - result)
        if commits and sub.group:
            try:
                await consumer.commit(commits)
            except Exception as exc:  # noqa: BLE001 - a lost commit means redelivery, which is safe
                log.warning("bus.commit_failed", group=sub.group, error=type(exc).__name__)

    async def _handle_together(
        self,
        sub: Subscription,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> bool:
        """A poll that brought a few records from several partitions goes to the batch handler
        at once (each partition's records in order, one after another), so a steady trickle is
        one transaction per poll rather than one per partition and record. True if handled;
        False if it was not tried (no batch handler, one partition, more than `max_batch`) or
        failed, and the partitions must be handled one by one."""
        handler = sub.batch_handler
        total = sum(len(recs) for recs in batches.values())
        if handler is None or len(batches) < 2 or total > sub.max_batch:
            return False
        records = [_record(cr) for recs in batches.values() for cr in recs]
        if not await try_batch(sub, handler, records):
            return False
        for recs in batches.values():
            RECORDS_HANDLED.labels(sub.group or "-", recs[0].topic).inc(len(recs))
        return True

    async def _handle_partition(
        self, sub: Subscription, recs: list[ConsumerRecord[bytes, bytes]]
    ) -> int:
        """Handle one partition's records in order (in batches if the subscription can);
        returns the next offset to commit."""
        handled = 0
        try:
            for chunk in chunks(sub, [_record(cr) for cr in recs]):
                await handle_chunk(sub, chunk, self.publish)
                handled += len(chunk)
        finally:  # one metric update per partition batch, not per record
            if handled:
                RECORDS_HANDLED.labels(sub.group or "-", recs[0].topic).inc(handled)
        return recs[-1].offset + 1

    async def read_topic(self, topic: str) -> list[Record]:
        """Every record of a topic up to its current end (no group, nothing committed)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in await self._partitions_of(consumer, topic)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            out: list[Record] = []
            while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(_record(cr) for cr in recs)
            return sorted(out, key=lambda r: (r.partition, r.offset))
        finally:
            await consumer.stop()

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        """Send all records and wait until the cluster has acknowledged every one (acks=all).

        The records are appended to one batch per partition (the key's partition, by the
        producer's own partitioner: the same as `send` chooses), each sent as soon as it is
        complete: `send` per record cost twice the CPU (~12 µs a record: metadata, partition
        list and accumulator per call) and waited `linger_ms` for more records before sending
        what a relay run had all in hand. A partition's records keep their order (a full batch
        is sent before its next one is started, and the producer sends a partition's batches
        in order); a record too large for a batch of its own goes through `send`, which raises
        as before."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("bus not started")
        partitions: dict[str, list[int]] = {}
        # a key's partition once per publish: the partitioner's murmur2 is pure Python (~5 µs
        # a key), and an aggregate's events share their key (a new case's four, in routing)
        chosen: dict[tuple[str, bytes], tuple[str, int]] = {}
        filling: dict[tuple[str, int], Any] = {}
        futures = []
        for r in records:
            key = r.key.encode()
            tp = chosen.get((r.topic, key))
            if tp is None:
                if r.topic not in partitions:
                    partitions[r.topic] = sorted(await producer.partitions_for(r.topic))
                every = partitions[r.topic]
                tp = chosen[(r.topic, key)] = (r.topic, _PARTITIONER(key, every, every))
            headers = list(r.headers)
            batch = filling.get(tp)
            if batch is not None:
                if batch.append(key=key, value=r.value, timestamp=None, headers=headers):
                    continue
                # full: send it before the partition's next record
                futures.append(await producer.send_batch(batch, tp[0], partition=tp[1]))
            batch = filling[tp] = producer.create_batch()
            if batch.append(key=key, value=r.value, timestamp=None, headers=headers) is None:
                del filling[tp]  # too large for a batch: `send` raises MessageSizeTooLargeError
                futures.append(await producer.send(tp[0], r.value, key=key, headers=headers))
        for (topic, partition), batch in filling.items():
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)

    async def stop_consuming(self) -> None:
        """Finish the batch in hand, commit it and stop the consumers; publishing still works."""
        self._stopping = True
        await self._stop_connector()
        await self._stop_watchdog()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks.values(), timeout=self._drain)
            for t in pending:
                t.cancel()
        self._tasks.clear()
        self._consumers.clear()
        self._joined.clear()
        self._connected = False

    async def stop(self) -> None:
        """Stop consuming (see `stop_consuming`), then flush and stop the producer."""
        await self.stop_consuming()
        if self._producer is not None:
            await _bounded(self._producer.stop(), "producer")
            self._producer = None

    async def abort(self) -> None:
        """Stop at once, committing nothing more (what `kill -9` does to a consumer)."""
        self._stopping = True
        await self._stop_connector()
        await self._stop_watchdog()
        await self._close_clients()

    async def _stop_connector(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
            self._connector = None

    async def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None

    async def _close_clients(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        for c in self._consumers.values():
            with contextlib.suppress(Exception):
                await _bounded(c.stop(), "consumer")
        self._consumers.clear()
        self._joined.clear()
        self._connected = False
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await _bounded(self._producer.stop(), "producer")
            self._producer = None

    async def ping(self) -> bool:
        """One metadata round-trip to the cluster."""
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 3.0)
        except Exception:  # noqa: BLE001 - not reachable is an answer, not an error
            return False
        return True

    def consumers_ready(self) -> bool:
        """Every consumer has joined its group (a member beyond the partition count may own none)."""
        if len(self._consumers) != len(self._subs) or any(t.done() for t in self._tasks.values()):
            return False  # a consumer task that ended has left its group
        if any(p.stalled for p in self._progress.values()):
            return False  # records wait and the group has not moved (see `_watch`)
        return all(j.done for key, j in self._joined.items() if key in self._consumers) and all(
            c.assignment() for key, c in self._consumers.items() if key not in self._joined
        )

    async def lag(self) -> dict[tuple[str, str, int], int]:
        """Uncommitted records per (group, topic, partition) for this process's assignment."""
        out: dict[tuple[str, str, int], int] = {}
        for sub in self._subs:
            c = self._consumers.get(id(sub))
            if c is None or not sub.group:
                continue
            for tp in c.assignment():
                committed = await c.committed(tp) or 0
                end = (await c.end_offsets([tp]))[tp]
                out[(sub.group, tp.topic, tp.partition)] = end - committed
        return out


def _record(cr: ConsumerRecord[bytes, bytes]) -> Record:
    return Record(
        topic=cr.topic,
        partition=cr.partition,
        offset=cr.offset,
        key=cr.key.decode(errors="replace") if cr.key is not None else None,
        value=cr.value or b"",
        headers=tuple(cr.headers or ()),
        timestamp_ms=cr.timestamp,
    )


CLOSE_TIMEOUT_S = 5.0


async def _close_watch_clients(
    admin: AIOKafkaAdminClient | None, probe: AIOKafkaConsumer | None
) -> None:
    with contextlib.suppress(Exception):
        if probe is not None:
            await _bounded(probe.stop(), "watchdog")
    with contextlib.suppress(Exception):
        if admin is not None:
            await _bounded(admin.close(), "watchdog")


async def _bounded(closing: Coroutine[Any, Any, None], what: str) -> None:
    """Close a client, but not for longer than CLOSE_TIMEOUT_S: with the cluster gone, leaving
    the group or flushing waits for the request timeout (40 s) while SIGTERM waits for us."""
    try:
        await asyncio.wait_for(closing, CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("bus.close_timed_out", client=what, timeout_s=CLOSE_TIMEOUT_S)
