"""The one-statement card on PostgreSQL: a chain of merges, orders, shipments, tickets, consents."""

from __future__ import annotations

from tests.integration.crm.conftest import Stack
from tests.unit.crm.test_card_read import card_of_a_merge_chain


async def test_card_of_a_merge_chain_is_one_query_on_postgresql(stack: Stack) -> None:
    await card_of_a_merge_chain(stack.api, stack.topics)
