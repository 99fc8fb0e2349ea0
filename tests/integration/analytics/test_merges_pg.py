"""Customer merges on PostgreSQL while the merged customers' cases are being consumed: merge and
ticket batches of one tenant run at once (as partitions do), lock the customers they touch, and
end as if every merge had been known from the start; undos separate them again."""

from __future__ import annotations

import asyncio
from typing import Any

from sbcontracts.catalog import encode
from sbcontracts.envelope import CloudEvent
from sbcontracts.topics import CUSTOMERS, TICKETS
from sbkit.bus.ports import Record
from tests.unit.analytics.conftest import TENANT, Api
from tests.unit.analytics.test_merges import case, kpis, merged, unmerged

PAIRS = 20


def _records(topic: str, events: list[CloudEvent[Any]]) -> list[Record]:
    return [Record(topic, 0, i, f"{TENANT}:k", encode(e)) for i, e in enumerate(events)]


async def _run(api: Api, *batches: tuple[str, list[CloudEvent[Any]]]) -> None:
    runtime = api.service.runtime
    handlers = {t: s.batch_handler for s in runtime._subscriptions for t in s.topics}
    await asyncio.gather(*(handlers[t](_records(t, events)) for t, events in batches))  # type: ignore[misc]


async def test_merges_and_cases_consumed_at_once_end_as_if_merged_from_the_start(
    pg_api: Api,
) -> None:
    cases = [e for i in range(PAIRS) for e in case(f"a{i}", f"A{i}", 0, resolved=10)]
    later = [e for i in range(PAIRS) for e in case(f"b{i}", f"B{i}", 30)]
    even = [merged(f"m{i}", f"A{i}", into=f"B{i}") for i in range(0, PAIRS, 2)]
    odd = [merged(f"m{i}", f"A{i}", into=f"B{i}") for i in reversed(range(1, PAIRS, 2))]
    await _run(pg_api, (TICKETS.name, cases), (CUSTOMERS.name, even), (CUSTOMERS.name, odd))
    await _run(pg_api, (TICKETS.name, later))
    assert await kpis(pg_api, "fcr") == {"fcr": 0.0}  # every A came back as their B

    undo = [unmerged(f"m{i}", restored=f"A{i}", survivor=f"B{i}") for i in range(0, PAIRS, 2)]
    chain = [merged(f"c{i}", f"B{i}", into=f"C{i}") for i in range(1, PAIRS, 2)]
    again = [e for i in range(1, PAIRS, 2) for e in case(f"c{i}", f"C{i}", 40)]
    await _run(pg_api, (CUSTOMERS.name, undo), (CUSTOMERS.name, chain), (TICKETS.name, again))
    # the even pairs are strangers again; the odd As resolved, their Bs and Cs came back
    assert await kpis(pg_api, "fcr") == {"fcr": 0.5}
