"""Running a FastAPI app under uvicorn with the kit's logging (the `python -m <service>` entry)."""

from __future__ import annotations

import gc
import socket
from collections.abc import Callable
from typing import Literal

import uvicorn
from fastapi import FastAPI

from sbkit.logging import configure_logging
from sbkit.settings import KitSettings


class _Server(uvicorn.Server):
    """uvicorn, except that a SIGTERM/SIGINT that shut it down gracefully ends with status 0.

    uvicorn re-raises the captured signal after shutdown, so supervisors would see a process
    "killed by SIGTERM" even though every consumer drained and the outbox flushed.
    """

    def handle_exit(self, sig: int, frame: object) -> None:
        super().handle_exit(sig, frame)  # type: ignore[arg-type]
        self._captured_signals.clear()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start the lifespan (pools, producers, consumers, relay), then freeze what it built too.

        Left unfrozen, those objects sat in the young generation until its first collection
        under load, which then walked them all at once: in ingest's bench a ~40,000-object
        young collection, a 25-50 ms pause that alone set the p99 at 500 requests/s."""
        await super().startup(sockets)
        freeze_startup_objects()


# The standard event loop, not uvloop (uvicorn's "auto" picks uvloop when installed). Writing to
# a closed TCP transport is silently dropped by asyncio but raises RuntimeError under uvloop, and
# aiokafka's connection expects only OSError there (aio-libs/aiokafka#1038, open). Under uvloop
# a broker restart could thus kill a client's metadata task and its group coordinator task with
# an error nobody retrieves; the heartbeat then waited forever on a metadata refresh while
# holding the coordinator-lookup lock, and every commit of that consumer waited for the lock:
# a consumer group stopped for good, silently (chaos runs; docs/architecture.md, "watchdog").
# The tests have always run on this loop, so the services now run the loop that is tested.
EVENT_LOOP: Literal["asyncio"] = "asyncio"

# Young garbage is collected after 10,000 new container objects (CPython: 700), in every
# service process. At 700 the collector ran many times inside one consumer batch, so the
# batch's objects (events, rows, statements' parameters) survived two young collections, were
# promoted, and the promoted count soon triggered a full collection of every object the
# process built since startup: in routing's bench (1 replica, 500/s then bursts) 22 % of the
# service's CPU was the collector, with a full collection of ~45-70 ms every ~0.5 s; at 10,000
# it was 8 %, with 4 full collections instead of 27. Ingest measured the same at 500 req/s
# (young collections under a request's group commit, up to ~35 ms); 50,000 made each young
# collection walk ~40,000 objects there. Cycles are still collected.
GC_THRESHOLDS = (10_000, 10, 10)


def serve(factory: Callable[[], FastAPI], settings: KitSettings) -> None:
    """Serve until SIGTERM; the lifespan drains consumers and flushes the outbox first."""
    configure_logging(level=settings.log_level, json=settings.log_json)
    tune_collector()
    app = factory()
    freeze_startup_objects()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop=EVENT_LOOP,
        timeout_graceful_shutdown=requests_grace_s(settings),
    )
    _Server(config).run()


def tune_collector() -> None:
    """Set the garbage collector's thresholds for a busy service process (`GC_THRESHOLDS`)."""
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, models, tables, schemas) out of the garbage
    collector's reach: they live as long as the process, yet each full collection walked them
    all again. In crm's attribution bench that was ~20 % of the consumer's CPU (0.25 -> 0.18 ms
    per message with it frozen); later garbage is collected as before."""
    gc.collect()
    gc.freeze()


def requests_grace_s(settings: KitSettings) -> int:
    """How long uvicorn lets in-flight requests finish after SIGTERM: the drain timeout + 5 s."""
    return int(settings.drain_timeout_s) + 5


def stop_bound_s(settings: KitSettings) -> float:
    """How long a SIGTERM of `serve` is given before it counts as stuck: the requests' grace plus
    15 s for the lifespan (consumers commit the batch in hand, the outbox is flushed, clients
    close; read-only loops are cut after a few seconds). The pods' grace period is this plus the
    preStop sleep (deploy/tools/gen.py); tests that SIGTERM a service wait this long."""
    return requests_grace_s(settings) + 15.0
