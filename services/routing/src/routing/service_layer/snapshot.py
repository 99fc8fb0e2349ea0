"""Snapshots of a tenant's routing configuration (queues, classifier) and the process cache of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from routing.domain.classify import Classifier
from routing.domain.queues import CaseFacts, Queue, match_queue

_MATCH_MEMO = 4096  # distinct (category, language, channel, tier) remembered per snapshot


@dataclass(frozen=True)
class Config:
    """One version of a tenant's routing configuration, as the domain uses it."""

    version: int
    queues: tuple[Queue, ...]
    classifier: Classifier
    by_id: dict[str, Queue] = field(default_factory=dict)
    _matched: dict[CaseFacts, Queue | None] = field(default_factory=dict, compare=False, repr=False)

    def match(self, facts: CaseFacts) -> Queue | None:
        """The queue a case with these facts goes to (`match_queue`, remembered per snapshot:
        the snapshot never changes, and a case's facts take few distinct values)."""
        if facts in self._matched:
            return self._matched[facts]
        found = match_queue(self.queues, facts)
        if len(self._matched) < _MATCH_MEMO:
            self._matched[facts] = found
        return found

    def queue(self, queue_id: str | None) -> Queue | None:
        """A queue by id (None for no queue or an unknown one)."""
        return self.by_id.get(queue_id) if queue_id else None

    @property
    def callback_queue(self) -> Queue | None:
        """The queue abandoned calls go to."""
        return next((q for q in self.queues if q.callback), None)


class ConfigCache:
    """The latest configuration snapshot of each tenant seen by this process."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Config] = {}

    def get(self, tenant: str, version: int) -> Config | None:
        """The snapshot of a tenant at exactly this version, if cached."""
        found = self._snapshots.get(tenant)
        return found if found is not None and found.version == version else None

    def put(self, tenant: str, config: Config) -> None:
        """Remember a committed version's snapshot."""
        self._snapshots[tenant] = config
