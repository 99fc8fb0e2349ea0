"""A noisy tenant: `python -m tests.integration.security.flood URL TOKEN WORKERS`.

WORKERS concurrent clients post messages to URL/v1/messages as fast as they are answered, over
real connections, until SIGTERM; then print one JSON line: the answers by status and the
Retry-After values seen. Run as a process of its own so that the flood's client work does not
share the measured client's (or the server's) interpreter."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter

import httpx


async def flood(url: str, token: str, workers: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    codes: Counter[int] = Counter()
    retry: set[str] = set()
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def worker(w: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                body = {"external_id": f"n-{w}-{i}", "sender": {"kind": "webchat", "value": "n"}}
                res = await client.post("/v1/messages", json=body | {"text": "x"})
                codes[res.status_code] += 1
                if res.status_code == 429:
                    retry.add(res.headers.get("retry-after", ""))

        print("flooding", flush=True)
        await asyncio.gather(*(worker(w) for w in range(workers)))
    print(json.dumps({"codes": codes, "retry_after": sorted(retry)}), flush=True)


if __name__ == "__main__":
    asyncio.run(flood(sys.argv[1], sys.argv[2], int(sys.argv[3])))
