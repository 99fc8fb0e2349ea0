"""The ingest process's own runtime settings (`python -m ingest`)."""

from __future__ import annotations

import gc

from ingest.app import tune_collector


def test_server_collects_young_garbage_in_large_steps_and_still_collects() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        young, older, _ = gc.get_threshold()
        assert young >= 10_000 and older >= 10  # not every few webhooks, as CPython's 700 did
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.set_threshold(*before)
