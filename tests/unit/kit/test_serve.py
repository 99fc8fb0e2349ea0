"""The service process entry: objects alive at startup are kept out of full collections."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import uvicorn
from fastapi import FastAPI

from sbkit.serve import EVENT_LOOP, _Server, freeze_startup_objects, serve
from sbkit.settings import KitSettings


def test_startup_objects_are_frozen_out_of_the_collector() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000  # every module, class and function so far
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual


def test_every_service_process_collects_young_garbage_in_large_steps_and_still_collects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At CPython's 700 a consumer batch's objects were promoted and soon forced full
    collections of the whole heap (routing: 22 % of its CPU, a 45-70 ms pause every ~0.5 s)."""
    before = gc.get_threshold()
    served: list[uvicorn.Config] = []
    monkeypatch.setattr(_Server, "run", lambda self: served.append(self.config))
    try:
        gc.set_threshold(700, 10, 10)
        serve(FastAPI, KitSettings(service="t"))
        young, older, _ = gc.get_threshold()
        assert served and served[0].loop == EVENT_LOOP
        assert young >= 10_000 and older >= 10  # not several times inside one batch
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


async def test_objects_the_lifespan_built_are_frozen_once_it_started() -> None:
    """Pools, clients and consumers are built in the lifespan, after the first freeze: left
    young, the first collection under load walked them all (a 15-35 ms pause in ingest)."""
    built: list[object] = []

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        built.extend({"conn": [i]} for i in range(5_000))  # what a lifespan builds
        yield

    config = uvicorn.Config(FastAPI(lifespan=lifespan), host="127.0.0.1", port=0, log_config=None)
    config.load()
    server = _Server(config)
    server.lifespan = config.lifespan_class(config)  # as uvicorn's serve() sets it up
    gc.unfreeze()
    try:
        await server.startup()
        assert built and gc.get_freeze_count() > 5_000
        assert not any(o is built[0] for o in gc.get_objects())  # out of the collector's reach
        await server.shutdown()
    finally:
        gc.unfreeze()


def _write_after_close(loop_factory: Callable[[], asyncio.AbstractEventLoop]) -> str:
    """What a write to a TCP transport that was closed does on a loop: aiokafka's connection
    writes like this and handles only OSError (aio-libs/aiokafka#1038)."""

    async def go() -> str:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.abort()  # the connection is gone, as in a broker restart
        await asyncio.sleep(0)
        try:
            writer.write(b"a request")
        except RuntimeError as exc:
            return f"RuntimeError: {exc}"
        finally:
            server.close()
        return "dropped"

    loop = loop_factory()
    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def test_services_run_on_a_loop_where_a_write_to_a_closed_connection_raises_nothing() -> None:
    """Under uvloop that write raised RuntimeError, which killed aiokafka's metadata and group
    coordinator tasks after broker restarts and left a consumer group stopped for good."""
    config = uvicorn.Config(FastAPI(), loop=EVENT_LOOP, log_config=None)
    factory = config.get_loop_factory()
    assert factory is not None
    assert _write_after_close(factory) == "dropped"


def test_uvloop_is_what_raised() -> None:
    """The reason for the choice above, kept true: if uvloop stops raising here, the choice can
    be measured again."""
    import uvloop  # installed with uvicorn[standard]

    assert _write_after_close(uvloop.new_event_loop).startswith("RuntimeError")
