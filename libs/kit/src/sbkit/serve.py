"""Running a FastAPI app under uvicorn with the kit's logging (the `python -m <service>` entry)."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from sbkit.logging import configure_logging
from sbkit.settings import KitSettings


def serve(factory: Callable[[], FastAPI], settings: KitSettings) -> None:
    """Serve until SIGTERM; uvicorn's graceful shutdown runs the lifespan (consumers drain)."""
    configure_logging(level=settings.log_level, json=settings.log_json)
    uvicorn.run(
        factory(),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s) + 5,
    )
