"""A lean HTTP/1.1 load generator: pre-built requests over keep-alive sockets, open or closed loop.

Benchmarks of a server on this 2-core machine must not let the client eat the CPU they measure.
httpx costs more per request than the service under test, so the generator here writes request
bytes built before the clock starts and reads only the status line, headers and the
Content-Length body. Latency of the open loop counts from each request's *scheduled* send time,
so a stalled server is not hidden by a stalled client (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import resource
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


def build_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The raw bytes of one POST request."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


async def _exchange(conn: _Conn, request: bytes) -> tuple[int, bytes]:
    conn.writer.write(request)
    head = await conn.reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await conn.reader.readexactly(length) if length else b""
    return status, body


@dataclass
class Pool:
    """Keep-alive connections spread round-robin over one or more server addresses."""

    targets: Sequence[tuple[str, int]]
    _idle: list[_Conn] = field(default_factory=list)
    _next: itertools.cycle[tuple[str, int]] | None = None

    async def _open(self) -> _Conn:
        if self._next is None:
            self._next = itertools.cycle(self.targets)
        host, port = next(self._next)
        reader, writer = await asyncio.open_connection(host, port)
        return _Conn(reader, writer)

    async def warm(self, n: int) -> None:
        """Open `n` connections now, so the timed phase does not pay for connecting."""
        self._idle += await asyncio.gather(*[self._open() for _ in range(n)])

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send one request on an idle connection (a new one if none); its status and body."""
        conn = self._idle.pop() if self._idle else await self._open()
        try:
            result = await _exchange(conn, request)
        except (asyncio.IncompleteReadError, ConnectionError):
            # the server closed an idle keep-alive connection: retry once on a new one
            conn.writer.close()
            conn = await self._open()
            result = await _exchange(conn, request)
        self._idle.append(conn)
        return result

    def close(self) -> None:
        """Close every idle connection."""
        for conn in self._idle:
            conn.writer.close()
        self._idle.clear()


def pct(values: list[float], q: float) -> float:
    """The q-quantile of seconds, in milliseconds."""
    if len(values) < 2:
        return values[0] * 1000 if values else 0.0
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] * 1000


@dataclass
class OpenLoopResult:
    """Latencies of the 2xx answers and the count of the others."""

    latencies: list[float]
    failures: int
    elapsed_s: float


async def open_loop(pool: Pool, requests: Sequence[bytes], rate: float) -> OpenLoopResult:
    """Send request i at start + i/rate whatever the server's state; time each to its answer.

    The collector is off meanwhile (as in `timeit`): a full collection of this process took
    up to ~70 ms, every request due in it was sent late, and that pause, not the server's,
    was the slowest 1-2 % of a 500 req/s phase in some runs."""
    latencies: list[float] = []
    failures = 0

    async def one(request: bytes, due: float) -> None:
        nonlocal failures
        status, _ = await pool.send(request)
        if 200 <= status < 300:
            latencies.append(time.perf_counter() - due)
        else:
            failures += 1

    tasks = []
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter() + 0.05
        for i, request in enumerate(requests):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(request, due)))
        await asyncio.gather(*tasks)
    finally:
        gc.enable()
    return OpenLoopResult(latencies, failures, time.perf_counter() - start)


def cpu_seconds() -> float:
    """CPU time this process used so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """CPU time another process used so far, from /proc (user + system)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks (USER_HZ)
