"""Topic registry: every topic, its partition key, partition count and retention (source of truth)."""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Topic:
    """One Kafka topic of the event catalog."""

    name: str
    key: str
    description: str
    partitions: int = 6
    retention_ms: int = 7 * DAY_MS
    compacted: bool = False

    @property
    def dlq(self) -> str:
        """The dead-letter topic paired with this one."""
        return f"{self.name}.dlq"


CONTROL = Topic(
    "sb.control.v1",
    "tenant id",
    "Control plane: tenants created, tokens revoked (read whole by every service).",
    partitions=1,
    retention_ms=-1,
)
INBOUND = Topic("sb.inbound.v1", "tenant + channel conversation id", "Raw adapter messages.")
MESSAGES = Topic("sb.messages.v1", "tenant + sender handle", "Normalised inbound messages.")
MESSAGES_ATTRIBUTED = Topic(
    "sb.messages.attributed.v1", "tenant + customer id", "Messages attributed to a customer."
)
CALLS = Topic("sb.calls.v1", "tenant + call id", "Telephony call lifecycle events.")
COMMERCE = Topic("sb.commerce.v1", "tenant + order id", "Orders and shipment tracking events.")
SURVEYS = Topic("sb.surveys.v1", "tenant + customer id", "CSAT, NPS and CES responses.")
CUSTOMERS = Topic("sb.customers.v1", "tenant + customer id", "Customer card changes and merges.")
TICKETS = Topic("sb.tickets.v1", "tenant + ticket id", "Case lifecycle, assignment and SLA.")
AGENTS = Topic("sb.agents.v1", "tenant + agent id", "Agent presence changes (for occupancy).")
NOTIFICATIONS = Topic(
    "sb.notifications.v1", "tenant + customer id", "Proactive notification decisions and receipts."
)
RECEIPTS = Topic(
    "sb.receipts.v1",
    "tenant + provider message id",
    "Provider delivery receipts of outbound messages (sent, delivered, read, failed).",
)
OUTBOUND = Topic(
    "sb.outbound.v1", "tenant + customer id", "Messages for channel adapters to deliver."
)

ALL_TOPICS: tuple[Topic, ...] = (
    CONTROL,
    INBOUND,
    MESSAGES,
    MESSAGES_ATTRIBUTED,
    CALLS,
    COMMERCE,
    SURVEYS,
    CUSTOMERS,
    TICKETS,
    AGENTS,
    NOTIFICATIONS,
    RECEIPTS,
    OUTBOUND,
)
BY_NAME: dict[str, Topic] = {t.name: t for t in ALL_TOPICS}


def partition_key(tenant_id: str, aggregate_id: str) -> str:
    """The partition key convention: tenant and aggregate id, so one aggregate stays in order."""
    return f"{tenant_id}:{aggregate_id}"
