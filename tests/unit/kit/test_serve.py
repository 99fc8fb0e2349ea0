"""The service process entry: objects alive at startup are kept out of full collections."""

from __future__ import annotations

import gc

from sbkit.serve import freeze_startup_objects


def test_startup_objects_are_frozen_out_of_the_collector() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000  # every module, class and function so far
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
