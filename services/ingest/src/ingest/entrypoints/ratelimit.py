"""Per-tenant token buckets in memory (per process: N replicas allow N times the rate)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ingest.service_layer.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class TenantRateLimiter:
    """A token bucket per tenant: `rate` tokens/s refill, `burst` tokens at most."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, tenant_id: str) -> None:
        """Take one token for the tenant, or raise RateLimited with the wait in seconds."""
        now = self._clock()
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        raise RateLimited(max(1, math.ceil((1.0 - bucket.tokens) / self.rate)))
