"""The routing state machine (tests/unit/routing/test_invariants.py) on real PostgreSQL, where a
consumer batch's new cases are decided together (one read per demand shape, one skip-locked
reservation) and claims take row locks: the same invariants must hold on that path."""

from __future__ import annotations

from pathlib import Path

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from routing.config import RoutingSettings
from tests.conftest import drop_schema, unique
from tests.integration.routing.conftest import pg_settings
from tests.unit.routing.test_invariants import Routing


def test_routing_invariants_hold_on_postgresql(pg_url: str) -> None:
    class OnPostgres(Routing):
        def settings(self, path: Path) -> RoutingSettings:
            self.schema = "routing_sm_" + unique("t").replace("-", "_")
            return pg_settings(pg_url, path, self.schema)

        def teardown(self) -> None:
            self.run(self.service.runtime.stop())
            self.run(drop_schema(pg_url, self.schema))
            self.loop.close()

    run_state_machine_as_test(
        OnPostgres, settings=settings(max_examples=15, stateful_step_count=20, deadline=None)
    )
