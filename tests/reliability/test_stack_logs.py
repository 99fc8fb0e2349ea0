"""The chaos report lists the consumers the bus's watchdog replaced during the run, from the
services' JSON logs (a replaced consumer catches up, so the lost/dup table alone would hide it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tests.reliability.stack import LocalStack


def test_only_the_runs_own_lines_of_that_event_are_read(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, 1, 2, 3)
    (tmp_path / "stack").mkdir()
    line = {"event": "bus.consumer_stalled", "group": "crm.messages", "waiting_at": ["x.py:1"]}
    (tmp_path / "stack" / "crm.log").write_text(
        "\n".join(
            [
                json.dumps({**line, "timestamp": "2026-11-22T10:00:00.000001Z"}),  # earlier run
                "not json: bus.consumer_stalled",
                json.dumps({"event": "bus.consumer_stalled!", "timestamp": "2026-11-23T10:00:00Z"}),
                json.dumps({**line, "timestamp": "2026-11-23T10:00:01.5Z"}),
                json.dumps({"event": "service.started", "timestamp": "2026-11-23T10:00:02Z"}),
            ]
        )
    )
    found = stack.logged("bus.consumer_stalled", datetime(2026, 11, 23, 9, 59, tzinfo=UTC))
    assert [(svc, e["group"], e["timestamp"]) for svc, e in found] == [
        ("crm", "crm.messages", "2026-11-23T10:00:01.5Z")
    ]
