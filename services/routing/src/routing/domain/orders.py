"""Which order a new case is about, for the notifier to suppress alerts per order."""

from __future__ import annotations

import re
from collections.abc import Sequence


def order_reference(text: str, recent_orders: Sequence[str]) -> str | None:
    """The customer's recent order the message names (as a whole token), else their only recent
    order, else None: with several recent orders and none named, guessing one would hide alerts
    about the others (an order-less case suppresses per customer instead)."""
    for order_id in recent_orders:
        if re.search(rf"(?<![\w-]){re.escape(order_id)}(?![\w-])", text, re.IGNORECASE):
            return order_id
    return recent_orders[0] if len(recent_orders) == 1 else None
