"""A stand-in for modules' structlog loggers in tests.

`structlog.testing.capture_logs` misses loggers that were already used in the session: the kit
configures structlog with `cache_logger_on_first_use`, so a module's logger keeps the processors
it first ran with. Tests that check what is logged put a `Recorder` in place of the module's
`log` instead (`record_logs`), whatever ran before them.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import pytest


class Recorder:
    """Records every call as an event dict (`event`, `level`, `at`, and the keywords)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _at(self, level: str) -> Any:
        def log(event: str, **kw: Any) -> None:
            self.events.append({"event": event, "level": level, "at": time.monotonic(), **kw})

        return log

    def __getattr__(self, level: str) -> Any:  # info, warning, error, exception, ...
        return self._at(level)

    def named(self, event: str) -> list[dict[str, Any]]:
        """The events of that name, in order."""
        return [e for e in self.events if e["event"] == event]


def record_logs(monkeypatch: pytest.MonkeyPatch, *modules: ModuleType) -> Recorder:
    """One recorder in place of each module's `log` for the rest of the test."""
    recorder = Recorder()
    for module in modules:
        monkeypatch.setattr(module, "log", recorder)
    return recorder
