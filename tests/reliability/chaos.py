"""Faults under load: push a mixed workload while killing services, the broker and PostgreSQL.

`python -m tests.reliability.chaos` (what `make chaos` runs) brings up its own local stack,
runs the workload with the faults, waits for quiescence and prints what was lost and what was
duplicated per service; exit status 1 if anything was. The smoke test in `make test`
(tests/reliability/test_reliability.py) calls `run_chaos` with smaller figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import httpx

from tests.reliability import verify
from tests.reliability.stack import ROOT, SERVICES, LocalStack
from tests.reliability.workload import (
    CHANNELS,
    SCOPES,
    SECRETS,
    SETTINGS,
    Builder,
    Expected,
    Tally,
    build,
    publish_adapter,
    push,
    run_id,
)


@dataclass
class Session:
    """A tenant of its own on the stack (so runs never see each other's data), and its clients."""

    stack: LocalStack
    tenant: str
    token: str
    paths: dict[str, str]

    def client(self, service: str, *, timeout: float = 15) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.stack.url(service),
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=64),
        )


async def open_session(stack: LocalStack, name: str) -> Session:
    """Create a tenant, a token, the six channels, the queues and a quiet-hours-free policy."""
    tenant = await asyncio.to_thread(stack.cli, "tenant", "create", name)
    scopes = [a for s in SCOPES for a in ("--scope", s)]
    token = await asyncio.to_thread(stack.cli, "token", "mint", "--tenant", tenant, *scopes)
    session = Session(stack, tenant, token.splitlines()[-1], {})
    async with session.client("ingest") as ingest:
        for kind in CHANNELS:
            body = {
                "kind": kind,
                "name": kind,
                "settings": SETTINGS.get(kind, {}),
                "secrets": SECRETS[kind],
            }
            resp = await _retry(partial(ingest.post, "/v1/channels", json=body))
            session.paths[kind] = resp.json()["webhook_path"]
    async with session.client("routing") as routing:
        await _retry(
            lambda: routing.post("/v1/queues/general", json={"name": "General", "position": 99})
        )
        await _retry(
            lambda: routing.post(
                "/v1/queues/callbacks", json={"name": "Callbacks", "position": 20, "callback": True}
            )
        )
    now = datetime.now(UTC)
    quiet = {
        "quiet_start": (now + timedelta(hours=8)).strftime("%H:%M"),
        "quiet_end": (now + timedelta(hours=9)).strftime("%H:%M"),
    }
    async with session.client("notifier") as notifier:
        await _retry(lambda: notifier.put("/v1/policies", json=quiet))
    return session


async def _retry(
    call: Callable[[], Awaitable[httpx.Response]], attempts: int = 60
) -> httpx.Response:
    """Setup calls: a token may need a moment to be known everywhere (control topic)."""
    resp: httpx.Response | None = None
    for _ in range(attempts):
        try:
            resp = await call()
            if resp.status_code < 300 or resp.status_code == 409:  # 409: done by a lost answer
                return resp
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1)
    raise RuntimeError(
        f"setup call failed: {resp.status_code if resp else '-'} {resp.text if resp else ''}"
    )


# ---------------------------------------------------------------- faults


@dataclass
class Faults:
    """How many of each fault to inject, and what was done."""

    kills: int = 5
    broker_restarts: int = 0
    pg_restarts: int = 0
    pg_pauses: int = 0
    gap_s: tuple[float, float] = (2.0, 6.0)
    done: dict[str, int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)


async def inject(stack: LocalStack, faults: Faults, rnd: random.Random, t0: float) -> None:
    """Run every planned fault, in random order, recovering from each before the next."""
    services = [SERVICES[i % len(SERVICES)] for i in range(faults.kills)]
    rnd.shuffle(services)
    plan = [("kill", s) for s in services]
    plan += [("broker", "kafka")] * faults.broker_restarts
    plan += [("pg-restart", "postgres")] * faults.pg_restarts
    plan += [("pg-pause", "postgres")] * faults.pg_pauses
    rnd.shuffle(plan)
    for kind, target in plan:
        await asyncio.sleep(rnd.uniform(*faults.gap_s))
        down = rnd.uniform(0.0, 2.0)
        if kind == "kill":
            await asyncio.to_thread(stack.kill_service, target)
            await asyncio.sleep(down)
            await asyncio.to_thread(stack.start_service, target)
            await asyncio.to_thread(stack.wait_ready, target)
        elif kind == "broker":
            await asyncio.to_thread(stack.kill_kafka)
            await asyncio.sleep(down)
            await asyncio.to_thread(stack.start_kafka)
        elif kind == "pg-restart":
            await asyncio.to_thread(stack.restart_pg_immediate)
        else:
            await asyncio.to_thread(stack.pause_pg, 1.0 + down)
        faults.done[kind] = faults.done.get(kind, 0) + 1
        faults.log.append(f"{time.monotonic() - t0:7.1f}s {kind} {target}")


# ---------------------------------------------------------------- one run


@dataclass
class Result:
    tenant: str
    tally: Tally
    report: verify.Report
    faults: Faults
    send_s: float
    settle_s: float
    total_s: float
    expected: Expected
    quiet: bool
    stalls: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def figures(self) -> str:
        t = self.tally
        e = self.expected
        lines = [
            f"tenant {self.tenant}: {e.messages} messages from {e.senders} senders over "
            f"{len(CHANNELS)} channels, {e.orders} orders ({e.delayed_shipments} delayed), "
            f"{e.calls} calls",
            f"requests: {t.accepted} accepted, {t.sent} sent, {t.retries} retries; "
            f"answers {dict(sorted(t.codes.items()))}",
            f"faults: {dict(sorted(self.faults.done.items()))}",
            *("  " + line for line in self.faults.log),
            f"time: sending {self.send_s:.0f} s, then "
            f"{'quiescent' if self.quiet else 'NOT quiescent'} after {self.settle_s:.0f} s more "
            f"(consumer lag 0, outboxes empty; last seen: {verify.STATE['last']}), "
            f"total {self.total_s:.0f} s",
            self.report.table(),
        ]
        if t.refused:
            lines.append(f"refused requests ({len(t.refused)}): {t.refused[:5]}")
        # a stalled consumer was replaced and caught up, so nothing is lost, but it is a bug
        lines.append(f"stalled consumers replaced by the bus's watchdog: {len(self.stalls)}")
        for service, entry in self.stalls:
            lines.append(f"  {service} {entry.get('group')} lag {entry.get('lag')}, waiting at:")
            waiting = entry.get("waiting_at")
            lines += [f"    {w}" for w in (waiting if isinstance(waiting, list) else [])]
        return "\n".join(lines)


async def run_chaos(
    stack: LocalStack,
    *,
    messages: int,
    faults: Faults,
    orders: int | None = None,
    calls: int | None = None,
    copies: int = 1,
    concurrency: int = 16,
    seed: int | None = None,
    settle_timeout_s: float = 600,
) -> Result:
    """Send the workload while `faults` happen; wait for quiescence; compare."""
    seed = random.randrange(1 << 30) if seed is None else seed
    rnd = random.Random(seed)
    rid = run_id()
    session = await open_session(stack, f"chaos-{rid}")
    b = Builder(session.paths, stack.url("ingest"), rid, seed, session.tenant)
    work = build(
        b,
        messages=messages,
        orders=messages // 20 if orders is None else orders,
        calls=messages // 20 if calls is None else calls,
        adapter=messages // 20,
        run_no=0,
    )
    t0 = time.monotonic()
    started_at = datetime.now(UTC)
    async with session.client("ingest") as ingest, session.client("analytics") as analytics:
        fault_task = asyncio.create_task(inject(stack, faults, rnd, t0))
        tally = Tally()
        await asyncio.gather(
            push(ingest, work, concurrency=concurrency, copies=copies, tally=tally),
            publish_adapter(stack.bootstrap, work.adapter, tally),
        )
        send_s = time.monotonic() - t0
        await fault_task
        for svc in SERVICES:  # every service is back before we wait for it to catch up
            await asyncio.to_thread(stack.wait_ready, svc)

        async def probe() -> object:
            conn = await verify.asyncpg.connect(stack.pg_dsn)
            try:
                return await verify.counts(conn, session.tenant)
            finally:
                await conn.close()

        _, quiet = await verify.wait_quiet(
            stack.bootstrap, stack.pg_dsn, probe, timeout_s=settle_timeout_s, settle_s=5
        )
        report = await verify.compare(
            dsn=stack.pg_dsn,
            bootstrap=stack.bootstrap,
            tenant=session.tenant,
            exp=work.expected,
            analytics=analytics,
            started=work.started,
        )
    total = time.monotonic() - t0
    stalls = stack.logged("bus.consumer_stalled", started_at)
    return Result(
        session.tenant,
        tally,
        report,
        faults,
        send_s,
        total - send_s,
        total,
        work.expected,
        quiet,
        stalls,
    )


def chaos_stack(data_dir: Path, kafka: int, pg: int, base: int) -> LocalStack:
    return LocalStack(data_dir, kafka, pg, base)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--kills", type=int, default=30)
    p.add_argument("--broker-restarts", type=int, default=3)
    p.add_argument("--pg-restarts", type=int, default=3)
    p.add_argument("--pg-pauses", type=int, default=3)
    p.add_argument("--gap", type=float, nargs=2, default=(5.0, 20.0), metavar=("MIN", "MAX"))
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seed", type=int)
    p.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = p.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # our adapter's broker-down noise
    stack = LocalStack(
        Path(os.environ.get("SB_DATA_DIR", ROOT / ".data" / "chaos")),
        int(os.environ.get("SB_KAFKA_PORT", "29792")),
        int(os.environ.get("SB_PG_PORT", "26132")),
        int(os.environ.get("SB_STACK_BASE_PORT", "8800")),
    )
    faults = Faults(
        args.kills, args.broker_restarts, args.pg_restarts, args.pg_pauses, gap_s=tuple(args.gap)
    )
    t0 = time.monotonic()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` ends a run like Ctrl-C: the stack goes down
    try:
        stack.up()
        print(f"stack up in {time.monotonic() - t0:.0f} s", flush=True)
        result = asyncio.run(
            run_chaos(
                stack,
                messages=args.messages,
                faults=faults,
                concurrency=args.concurrency,
                seed=args.seed,
            )
        )
    finally:
        if not args.keep:
            stack.down()
    print(result.figures())
    return 1 if result.report.lost or result.report.duplicated or result.tally.refused else 0


if __name__ == "__main__":
    sys.exit(main())
