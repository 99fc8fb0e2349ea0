"""Poison on the real local stack (issue 10): 1 % malformed records on every consumed topic.

A stack of its own (data in .data/test-poison, Kafka :19692, PostgreSQL :16032, services on
:9201-9205), a tenant of its own; prints the figures (see poison.py for the harness).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sbkit.bus.ports import RetryPolicy
from tests.reliability.poison import run_poison
from tests.reliability.stack import ROOT, LocalStack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    stack = LocalStack(
        ROOT / ".data" / "test-poison", kafka_port=19692, pg_port=16032, base_port=9200
    )
    with stack.running():
        yield stack


@pytest.mark.timeout(1200)  # ~2-3 min on an idle 2-core machine; far more when it is shared
async def test_malformed_records_on_every_topic_are_dead_lettered_and_replay_duplicates_nothing(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run_poison(stack, messages=400, settle_timeout_s=300)
    with capsys.disabled():
        print(f"\n== poison (smoke)\n{result.figures()}", flush=True)
    fig = result.dlq
    # every poison record in its topic's DLQ, once per consumer group, with the metadata
    assert fig.per_topic and all(row["poison"] >= 1 for row in fig.per_topic.values())
    assert not fig.missing, fig.missing[:10]
    assert not fig.bad_meta, fig.bad_meta[:10]
    assert fig.good_dead_lettered == 0
    # dead-lettered within the retry budget (malformed = no retries), not stuck behind it
    assert fig.max_attempts <= RetryPolicy().attempts
    # the good records after the poison were handled: no partition stalled
    assert result.before.lost == 0, result.figures()
    assert result.before.duplicated == 0, result.figures()
    # every DLQ replayed (at least this run's records), and the replay changed nothing
    for topic, row in fig.per_topic.items():
        assert result.replayed.get(topic, 0) >= row["dlq_records"], topic
    assert result.after.lost == 0, result.figures()
    assert result.after.duplicated == 0, result.figures()
    assert result.after.table() == result.before.table()
