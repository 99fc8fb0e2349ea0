"""The routing service as its own process for `bench.routing_decisions`: `python -m routing`
(uvicorn on the kit's event loop, the same app and lifespan) except that `message.attributed` is read from the
bench's own topic, SB_BENCH_TOPIC, so a run never sees another bench's messages.

    SB_BENCH_TOPIC=bench.attributed.x SB_BUS=kafka ... python -m bench.routing_server
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from routing.bootstrap import bootstrap
from routing.config import RoutingSettings
from sbcontracts.topics import MESSAGES_ATTRIBUTED
from sbkit.serve import serve
from sbkit.web import standalone_app
from sbkit.wiring import build_verifier


def create_app(settings: RoutingSettings) -> FastAPI:
    """routing.app.create_app with the attributed topic renamed."""
    topic = os.environ["SB_BENCH_TOPIC"]
    service = bootstrap(settings, topic_names={MESSAGES_ATTRIBUTED.name: topic})
    return standalone_app(service.runtime, service.routers, build_verifier(settings))


if __name__ == "__main__":
    settings = RoutingSettings()
    serve(lambda: create_app(settings), settings)
