"""The one-statement card on PostgreSQL: a chain of merges, orders, shipments, tickets, consents;
read without a transaction block around it."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event

from tests.integration.crm.conftest import Stack
from tests.unit.crm.test_card_read import card_of_a_merge_chain


async def test_card_of_a_merge_chain_is_one_query_on_postgresql(stack: Stack) -> None:
    await card_of_a_merge_chain(stack.api, stack.topics)


async def test_card_and_timeline_reads_send_no_begin_or_commit(stack: Stack) -> None:
    created = await stack.api.call("POST", "/v1/customers", json={"email": "ola@example.pl"})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    levels: list[str | None] = []
    me = asyncio.current_task()  # the requests run in it; consumers and the relay do not

    def record(_conn: Any, _cursor: Any, _sql: str, _params: Any, context: Any, _many: Any) -> None:
        if asyncio.current_task() is me:
            levels.append(context.execution_options.get("isolation_level"))

    engine = stack.service.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        for path in (f"/v1/customers/{cid}", f"/v1/customers/{cid}/timeline"):
            assert (await stack.api.call("GET", path)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # asyncpg sends no BEGIN on an autocommit connection: each read statement stands alone
    assert levels == ["AUTOCOMMIT"] * 3, levels  # the card's one, the timeline's two
