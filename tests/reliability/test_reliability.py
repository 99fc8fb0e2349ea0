"""Reliability on the real local stack (issue 10): faults and a redelivery storm (poison: test_poison.py).

One stack of its own (data in .data/test-chaos, Kafka :19492, PostgreSQL :15832, services on
:8901-8905) for the module, so killing its broker or database never disturbs other tests.
Each test uses a tenant of its own and prints its figures. `make chaos` runs the fault test's
harness at full size.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.chaos import Faults, run_chaos
from tests.reliability.stack import ROOT, LocalStack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    stack = LocalStack(
        ROOT / ".data" / "test-chaos", kafka_port=19492, pg_port=15832, base_port=8900
    )
    with stack.running():
        yield stack


def _show(capsys: pytest.CaptureFixture[str], title: str, text: str) -> None:
    with capsys.disabled():
        print(f"\n== {title}\n{text}", flush=True)


@pytest.mark.timeout(2400)  # ~5 min on an idle 2-core machine; far more when it is shared
async def test_killed_services_broker_and_database_lose_nothing_and_duplicate_nothing(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = Faults(kills=5, broker_restarts=1, pg_restarts=1, pg_pauses=1, gap_s=(3.0, 8.0))
    result = await run_chaos(stack, messages=5000, faults=faults, concurrency=24)
    _show(capsys, "faults (smoke)", result.figures())
    assert faults.done.get("kill", 0) >= 5
    assert result.quiet, result.figures()
    assert not result.tally.refused, result.tally.refused[:5]
    assert result.report.lost == 0, result.figures()
    assert result.report.duplicated == 0, result.figures()


@pytest.mark.timeout(1800)
async def test_every_webhook_sent_three_times_concurrently_creates_no_duplicates(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run_chaos(stack, messages=600, faults=Faults(kills=0), copies=3)
    _show(capsys, "redelivery storm (every webhook x3, concurrently)", result.figures())
    assert not result.tally.refused, result.tally.refused[:5]
    assert result.report.duplicated == 0, result.figures()
    assert result.report.lost == 0, result.figures()
