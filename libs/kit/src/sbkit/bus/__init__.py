"""Event bus: one port, two backends (Kafka for the stack, a local log for embedded mode and tests)."""

from sbkit.bus.ports import (
    BatchHandler,
    Bus,
    Handler,
    OutgoingRecord,
    PoisonMessage,
    Record,
    RetryPolicy,
    Subscription,
)

__all__ = [
    "BatchHandler",
    "Bus",
    "Handler",
    "OutgoingRecord",
    "PoisonMessage",
    "Record",
    "RetryPolicy",
    "Subscription",
]
