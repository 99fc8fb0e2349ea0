"""The two run modes the end-to-end scenarios (and the pipeline bench) drive, behind one shape.

A `Deployment` answers: which HTTP client serves a path (one app in embedded mode, five
processes on the local stack, chosen by the services' public prefixes), how to get a tenant
and a token, what is on a topic (what channel adapters read), and whether a consumer group
has caught up. `Tenant` is one tenant's authenticated view of it, used by the scenarios.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from deploy.tools.gen import SERVICES
from sbcontracts.catalog import decode
from sbkit.auth import Keyring, mint
from sbkit.bus.kafka import KafkaBus
from sbkit.bus.ports import Record
from sbkit.settings import KitSettings
from switchboard.embedded import create_app

ROOT = Path(__file__).resolve().parents[2]
STACK_SH = ROOT / "deploy" / "local" / "stack.sh"
SERVICE_NAMES = tuple(s.name for s in SERVICES)
SCOPES = (
    "messages:write",
    "messages:read",
    "channels:write",
    "channels:read",
    "calls:write",
    "orders:write",
    "shipments:write",
    "surveys:write",
    "customers:read",
    "customers:write",
    "tickets:read",
    "tickets:write",
    "routing:admin",
    "kpis:read",
    "notifications:read",
    "notifications:write",
)

T = TypeVar("T")


def service_of(path: str) -> str:
    """The service whose public prefix serves `path` (the ingress's routing table)."""
    for svc in SERVICES:
        if any(path == p or path.startswith(p + "/") for p in svc.prefixes):
            return svc.name
    raise ValueError(f"no service serves {path}")


class Deployment(Protocol):
    """What the scenarios need from a run mode."""

    name: str
    timeout_s: float  # how long an asynchronous effect may take to show

    def client(self, service: str) -> httpx.AsyncClient: ...

    def token(self, tenant: str) -> str: ...

    async def read_topic(self, topic: str) -> list[Record]: ...

    async def lag(self, group: str, topic: str) -> int: ...


def new_tenant_name() -> str:
    """A tenant no other test uses (alphanumeric: it is also the tenant id in webhook paths)."""
    return "t" + uuid.uuid4().hex[:12]


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what} (last: {last!r})")


@dataclass
class Tenant:
    """One tenant's authenticated view of a deployment."""

    deployment: Deployment
    tenant: str
    token: str

    async def ok(self, method: str, url: str, **kwargs: Any) -> Any:
        """A request that must succeed; its JSON (or None). Webhooks carry no bearer token."""
        headers = dict(kwargs.pop("headers", None) or {})
        if not url.startswith("/v1/webhooks/"):
            headers["Authorization"] = f"Bearer {self.token}"
        client = self.deployment.client(service_of(url.split("?")[0]))
        resp = await client.request(method, url, headers=headers, **kwargs)
        assert resp.status_code < 300, f"{method} {url} → {resp.status_code}: {resp.text}"
        return resp.json() if resp.content else None

    async def topic(self, name: str) -> list[Any]:
        """Every event of this tenant on a topic (what adapters and other services read)."""
        events = [decode(r.value) for r in await self.deployment.read_topic(name)]
        return [e for e in events if e.tenantid == self.tenant]

    async def caught_up(self, group: str, topic: str) -> bool:
        """The consumer group has handled everything published on the topic so far."""
        return await self.deployment.lag(group, topic) == 0

    async def eventually(
        self, probe: Callable[[], Awaitable[T | None]], *, what: str = "", factor: float = 1.0
    ) -> T:
        """`eventually` with this run mode's patience."""
        return await eventually(probe, timeout_s=self.deployment.timeout_s * factor, what=what)


@dataclass
class Embedded:
    """All five services in one FastAPI app (in-process ASGI), one bus, SQLite files."""

    app: FastAPI
    key_dir: Path
    name: str = "embedded"
    timeout_s: float = 20.0
    _client: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        transport = httpx.ASGITransport(app=self.app)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://sb.test")

    def client(self, service: str) -> httpx.AsyncClient:
        return self._client

    def token(self, tenant: str) -> str:
        _, token = mint(
            Keyring.load(self.key_dir), tenant_id=tenant, scopes=list(SCOPES), ttl_s=7200
        )
        return token

    async def read_topic(self, topic: str) -> list[Record]:
        return list(await self.app.state.bus.read_topic(topic))

    async def lag(self, group: str, topic: str) -> int:
        lags = (await self.app.state.bus.lag()).items()
        return sum(n for (g, t, _), n in lags if (g, t) == (group, topic))

    async def aclose(self) -> None:
        await self._client.aclose()


@asynccontextmanager
async def embedded_app(tmp_path: Path) -> AsyncIterator[Embedded]:
    """The embedded app running (lifespan) on SQLite files and a local bus under `tmp_path`;
    SB_* settings come from the environment as in `make run`."""
    settings = KitSettings(
        service="switchboard",
        local_bus_path=str(tmp_path / "bus.db"),
        auth_key_dir=str(tmp_path / "keys"),
        database_url=f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        deployment = Embedded(app, tmp_path / "keys")
        try:
            yield deployment
        finally:
            await deployment.aclose()


@dataclass
class LocalStack:
    """deploy/local/stack.sh: PostgreSQL, Kafka and the five services as separate processes.

    `settings` are extra SB_* variables every service process gets (stack.sh passes its
    environment through), e.g. short timer polls for tests.
    """

    data_dir: Path
    kafka_port: int
    pg_port: int
    base_port: int
    settings: dict[str, str] = field(default_factory=dict)
    name: str = "stack"
    timeout_s: float = 60.0
    _clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/switchboard"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.base_port + SERVICE_NAMES.index(service) + 1}"

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
        return (
            base
            | self.settings
            | {
                "SB_DATA_DIR": str(self.data_dir),
                "SB_KAFKA_PORT": str(self.kafka_port),
                "SB_PG_PORT": str(self.pg_port),
                "SB_STACK_BASE_PORT": str(self.base_port),
            }
        )

    def process_env(self) -> dict[str, str]:
        """What the stack's service processes see: `env()` plus `stack.sh env`."""
        env = self.env()
        for line in self.run("env").stdout.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'\"")
        return env

    def script(
        self, name: str, *args: str, timeout_s: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """`deploy/local/<name> ARGS` with this stack's env; raises with its output when it fails."""
        done = subprocess.run(
            ["bash", str(STACK_SH.parent / name), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def run(self, action: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """`stack.sh <action>`."""
        return self.script(STACK_SH.name, action, timeout_s=timeout_s)

    def up(self, *, fresh: bool = True, attempts: int = 3, timeout_s: float = 300) -> None:
        """Start it (from an empty data dir when `fresh`).

        `up` is idempotent and leaves started services running when one is not ready within
        its 60 s, so on a saturated machine (a fresh broker creating its offsets topic under
        load) it is simply asked again."""
        if fresh:
            self.run("down")
            shutil.rmtree(self.data_dir, ignore_errors=True)
        for attempt in range(1, attempts + 1):
            try:
                self.run("up", timeout_s)
                return
            except RuntimeError:
                if attempt == attempts:
                    raise

    def down(self) -> None:
        self.run("down")

    @contextmanager
    def running(self) -> Iterator[LocalStack]:
        """Up for the block, down after it (also when the block or `up` fails)."""
        try:
            self.up()
            yield self
        finally:
            self.down()

    def pids(self) -> dict[str, int]:
        """The service processes (pid files written by stack.sh)."""
        stack = self.data_dir / "stack"
        return {s: int((stack / f"{s}.pid").read_text()) for s in SERVICE_NAMES}

    def cli(self, *args: str) -> str:
        """`switchboard ARGS` with the stack's `env` (as an operator would run it)."""
        script = f'eval "$(bash {STACK_SH} env)" && exec {ROOT}/.venv/bin/switchboard "$@"'
        done = subprocess.run(
            ["bash", "-c", script, "cli", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.data_dir,
        )
        if done.returncode != 0:
            raise RuntimeError(f"switchboard {' '.join(args)}:\n{done.stdout}\n{done.stderr}")
        return done.stdout.strip()

    def token(self, tenant: str) -> str:
        """Register the tenant and mint a token for it through the CLI."""
        tenant_id = self.cli("tenant", "create", tenant)
        scopes = [a for s in SCOPES for a in ("--scope", s)]
        return self.cli("token", "mint", "--tenant", tenant_id, *scopes, "--ttl", "7200")

    def client(self, service: str) -> httpx.AsyncClient:
        if service not in self._clients:
            self._clients[service] = httpx.AsyncClient(base_url=self.url(service), timeout=30)
        return self._clients[service]

    async def aclose(self) -> None:
        for c in self._clients.values():
            await c.aclose()
        self._clients.clear()

    async def read_topic(self, topic: str) -> list[Record]:
        return await KafkaBus(self.bootstrap).read_topic(topic)

    async def lag(self, group: str, topic: str) -> int:
        ends = await self.end_offsets(topic)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
        finally:
            await admin.close()
        # a partition the group never committed counts from 0 (the stack's topics start there)
        return sum(
            end - max(committed[tp].offset, 0) if tp in committed else end
            for tp, end in ends.items()
        )

    async def group_lags(self, groups: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
        """Uncommitted records per group and topic (end offset minus committed offset)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await admin.start()
        await consumer.start()
        try:
            if groups is None:
                groups = [g[0] for g in await admin.list_consumer_groups()]
            out: dict[str, dict[str, int]] = {}
            for group in groups:
                committed = await admin.list_consumer_group_offsets(group)
                if not committed:
                    continue
                ends = await consumer.end_offsets(list(committed))
                per_topic: dict[str, int] = {}
                for tp, meta in committed.items():
                    behind = ends[tp] - max(meta.offset, 0)
                    per_topic[tp.topic] = per_topic.get(tp.topic, 0) + behind
                out[group] = per_topic
            return out
        finally:
            await consumer.stop()
            await admin.close()

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        """The current end offset of every partition of a topic."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = await KafkaBus._partitions_of(consumer, topic)
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            return dict(await consumer.end_offsets(tps))
        finally:
            await consumer.stop()
