"""Per-tenant token buckets in memory (per process: N replicas allow N times the rate).

Every authenticated API route takes a token of its caller's tenant (`sbkit.auth.requires`);
ingest's webhooks, which carry no token, take one of the tenant their path names after the
signature check. A tenant over its rate gets 429 with Retry-After; other tenants are untouched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sbkit.problems import DomainError


class RateLimited(DomainError):
    """The tenant is over its request rate."""

    status, title = 429, "Too many requests"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"retry after {retry_after_s} s", headers={"Retry-After": str(retry_after_s)}
        )
        self.retry_after_s = retry_after_s


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
