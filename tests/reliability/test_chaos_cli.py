"""`make chaos` stopped by a signal takes its stack down (a run is 35-50 minutes and starts five
services, Kafka and PostgreSQL of its own; an interrupted run must not leave them running)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.reliability.stack import ROOT

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, signal
    from tests.reliability import chaos

    class Stack:
        def __init__(self, *args):
            pass

        def up(self):
            print("up", flush=True)

        def down(self):
            print("down", flush=True)

    async def run_chaos(stack, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(30)

    chaos.LocalStack = Stack
    chaos.run_chaos = run_chaos
    chaos.main([])
    """
)


def test_sigterm_takes_the_stack_down() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "up" and lines[-1] == "down", (done.returncode, done.stdout, done.stderr)
    assert done.returncode != 0  # interrupted, not a clean run
