"""Fixtures of the integration tests (bus backends, databases)."""

from tests.integration.bus_fixtures import backend, effect_store, make_bus
from tests.integration.db_fixtures import engine

__all__ = ["backend", "effect_store", "engine", "make_bus"]
