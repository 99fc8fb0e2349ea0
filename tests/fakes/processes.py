"""Stopping a service process that a test started: SIGTERM, then as long as the server's bound."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from sbkit.serve import stop_bound_s
from sbkit.settings import KitSettings


def sigterm_and_wait(proc: subprocess.Popen[bytes], *, settings: KitSettings, log: Path) -> int:
    """SIGTERM `proc` and wait for it as long as `sbkit.serve.stop_bound_s` gives a service of
    these settings; still running then, it is stuck: killed, and the test fails with its log's
    tail. A fixed wait shorter than the bound failed shutdowns that were merely slow, a longer
    one hid stuck ones. Returns the exit status."""
    proc.send_signal(signal.SIGTERM)
    bound = stop_bound_s(settings)
    try:
        return proc.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
        pytest.fail(f"still running {bound:.0f} s after SIGTERM (stop_bound_s):\n{tail}")
