"""Per-tenant token buckets: over the rate → 429 with Retry-After, other tenants unaffected."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbkit.ratelimit import RateLimited, TenantRateLimiter
from tests.unit.ingest import samples
from tests.unit.ingest.conftest import add_channel, start_harness


def test_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = TenantRateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited) as exc:
        limiter.check("a")
    assert exc.value.retry_after_s == 1
    limiter.check("b")
    now[0] = 0.5
    limiter.check("a")


async def test_tenant_over_its_rate_gets_429_with_retry_after(tmp_path: Path) -> None:
    async for h in start_harness(tmp_path, ingest_rate_per_s=0.5, ingest_rate_burst=2):
        body = {"external_id": "x", "sender": {"kind": "webchat", "value": "v-1"}, "text": "hi"}
        codes = [
            (await h.client.post("/v1/messages", json=body, headers=h.token())).status_code
            for _ in range(2)
        ]
        limited = await h.client.post("/v1/messages", json=body, headers=h.token())
        other = await h.client.post("/v1/messages", json=body, headers=h.token("globex"))
        assert codes == [201, 200]
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
        assert limited.headers["content-type"] == "application/problem+json"
        assert other.status_code == 201


async def test_forged_webhooks_do_not_drain_the_tenant_bucket(tmp_path: Path) -> None:
    # a burst of 2: one for creating the channel (API calls share the tenant's bucket), one webhook
    async for h in start_harness(tmp_path, ingest_rate_per_s=0.5, ingest_rate_burst=2):
        path = await add_channel(h, "telegram", {"secret_token": "tg"})
        raw = samples.telegram(1, 1, "hi")
        forged = {"content-type": "application/json", "x-telegram-bot-api-secret-token": "x"}
        for _ in range(5):
            assert (await h.client.post(path, content=raw, headers=forged)).status_code == 401
        good = {**forged, "x-telegram-bot-api-secret-token": "tg"}
        assert (await h.client.post(path, content=raw, headers=good)).status_code == 200
        limited = await h.client.post(path, content=raw, headers=good)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
