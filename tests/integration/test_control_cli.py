"""The real `switchboard` CLI as a process: tenants, tokens, revocation on the bus, DLQ tools."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from sbcontracts.catalog import decode
from sbcontracts.events.control import TokenRevoked
from sbcontracts.topics import ALL_TOPICS, CONTROL, MESSAGES
from sbkit.auth import Keyring, TokenVerifier
from sbkit.bus.delivery import Failure, dlq_record
from sbkit.bus.kafka import KafkaBus
from sbkit.bus.local import LocalBus
from sbkit.bus.ports import Record
from sbkit.db.engine import make_engine
from tests.conftest import ROOT, unique

CLI = str(Path(sys.executable).parent / "switchboard")
if not Path(CLI).exists():
    CLI = str(ROOT / ".venv" / "bin" / "switchboard")


@dataclass
class Cli:
    """Runs `switchboard` in a scratch folder with its own data, keys, bus and databases."""

    cwd: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args], cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=180
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    async def arun(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.run, *args)

    async def aok(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.ok, *args)

    @property
    def key_dir(self) -> Path:
        return Path(self.env["SB_AUTH_KEY_DIR"])

    @property
    def bus_path(self) -> str:
        return self.env["SB_LOCAL_BUS_PATH"]


def make_cli(tmp_path: Path, **overrides: str) -> Cli:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
    env = {
        **base,
        "SB_DATA_DIR": str(tmp_path / "data"),
        "SB_AUTH_KEY_DIR": str(tmp_path / "keys"),
        "SB_LOCAL_BUS_PATH": str(tmp_path / "data" / "bus.db"),
        "SB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/{{service}}.db",
        "SB_LOG_LEVEL": "WARNING",
        **overrides,
    }
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    return Cli(cwd, env)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return make_cli(tmp_path)


def minted(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    """(token id, token) from `token mint --show-id`."""
    token = result.stdout.strip()
    ids = [
        line.split(":", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("token id:")
    ]
    assert len(ids) == 1, result.stderr
    return ids[0], token


def revocations(records: list[Record]) -> list[TokenRevoked]:
    events = [decode(r.value).data for r in records]
    return [e for e in events if isinstance(e, TokenRevoked)]


def assert_token_of_acme(cli: Cli, jti: str, token: str) -> None:
    principal = TokenVerifier(Keyring.load(cli.key_dir)).verify(token)
    assert principal.tenant_id == "acme"
    assert principal.scopes == frozenset({"messages:write"})
    assert principal.token_id == jti


def test_cli_creates_a_tenant_mints_and_revokes_a_token_on_the_local_bus(cli: Cli) -> None:
    assert cli.ok("tenant", "create", "acme").stdout.strip() == "acme"
    jti, token = minted(
        cli.ok("token", "mint", "--tenant", "acme", "--scope", "messages:write", "--show-id")
    )
    assert_token_of_acme(cli, jti, token)

    assert cli.ok("token", "revoke", jti).stdout.strip() == f"revoked {jti}"

    bus = LocalBus(cli.bus_path)
    try:
        revoked = revocations(bus.read_all(CONTROL.name))
    finally:
        bus.close()
    assert [(r.token_id, r.tenant_id) for r in revoked] == [(jti, "acme")]
    assert revoked[0].expires_at is not None and revoked[0].expires_at.tzinfo is not None


def test_cli_refuses_a_duplicate_tenant_with_a_clear_message(cli: Cli) -> None:
    cli.ok("tenant", "create", "acme")
    again = cli.run("tenant", "create", "acme")
    assert again.returncode != 0
    assert "tenant 'acme' exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_cli_refuses_to_mint_for_an_unknown_tenant(cli: Cli) -> None:
    result = cli.run("token", "mint", "--tenant", "nobody", "--scope", "messages:write")
    assert result.returncode != 0
    assert "unknown tenant 'nobody'" in result.stderr
    assert result.stdout.strip() == ""
    assert "Traceback" not in result.stderr


def test_cli_refuses_to_revoke_an_unknown_token(cli: Cli) -> None:
    result = cli.run("token", "revoke", "0" * 32)
    assert result.returncode != 0
    assert "unknown token" in result.stderr
    assert "revoked" not in result.stdout


async def test_cli_revocation_reaches_kafka_and_the_control_store_lives_in_postgres(
    tmp_path: Path, kafka_bootstrap: str, pg_url: str
) -> None:
    schema = "t_" + unique("ctl").split("-", 1)[1]
    cli = make_cli(
        tmp_path,
        SB_BUS="kafka",
        SB_KAFKA_BOOTSTRAP=kafka_bootstrap,
        SB_DATABASE_URL=pg_url,
        SB_DB_SCHEMA=schema,
    )
    tenant = unique("acme")
    try:
        assert (await cli.aok("tenant", "create", tenant)).stdout.strip() == tenant
        duplicate = await cli.arun("tenant", "create", tenant)
        assert duplicate.returncode != 0 and f"tenant {tenant!r} exists" in duplicate.stderr
        unknown = await cli.arun("token", "mint", "--tenant", "nobody", "--scope", "x:read")
        assert unknown.returncode != 0 and "unknown tenant 'nobody'" in unknown.stderr

        jti, token = minted(
            await cli.aok(
                "token", "mint", "--tenant", tenant, "--scope", "messages:write", "--show-id"
            )
        )
        principal = TokenVerifier(Keyring.load(cli.key_dir)).verify(token)
        assert (principal.tenant_id, principal.token_id) == (tenant, jti)
        await cli.aok("token", "revoke", jti)

        found: list[TokenRevoked] = []
        deadline = time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            records = await KafkaBus(kafka_bootstrap).read_topic(CONTROL.name)
            found = [r for r in revocations(records) if r.token_id == jti]
        assert [(r.token_id, r.tenant_id) for r in found] == [(jti, tenant)]

        engine = make_engine(pg_url, schema=schema)
        async with engine.connect() as conn:
            revoked_at = await conn.scalar(
                text("SELECT revoked_at FROM tokens WHERE id = :id"), {"id": jti}
            )
            outbox_left = await conn.scalar(text("SELECT count(*) FROM outbox"))
        await engine.dispose()
        assert revoked_at is not None
        assert outbox_left == 0
    finally:
        admin = make_engine(pg_url)
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


def registry_bus(path: str) -> LocalBus:
    """The local log with the registry's partition counts (as the CLI opens it)."""
    return LocalBus(path, partitions={t.name: t.partitions for t in ALL_TOPICS})


async def test_cli_lists_and_replays_a_dead_lettered_record_once(cli: Cli) -> None:
    Path(cli.bus_path).parent.mkdir(parents=True, exist_ok=True)
    bus = registry_bus(cli.bus_path)
    failed = Record(
        topic=MESSAGES.name,
        partition=0,
        offset=7,
        key="acme:conv-1",
        value=b'{"id": "evt-1"}',
        headers=(("ce_id", b"evt-1"),),
    )
    failure = Failure(ValueError("cannot parse"), attempts=5, first_failure=time.time())
    await bus.publish([dlq_record(failed, failure, group="crm.messages")])
    bus.close()

    listed = (await cli.aok("dlq", "list", MESSAGES.name)).stdout.splitlines()
    assert len(listed) == 1
    entry = json.loads(listed[0])
    assert entry["topic"] == MESSAGES.name
    assert entry["offset"] == "7"
    assert entry["error.class"] == "ValueError"
    assert entry["error.message"] == "cannot parse"
    assert entry["group"] == "crm.messages"

    assert (await cli.aok("dlq", "replay", MESSAGES.name)).stdout.strip() == "replayed 1"
    assert (await cli.aok("dlq", "replay", MESSAGES.name)).stdout.strip() == "replayed 0"

    bus = registry_bus(cli.bus_path)
    try:
        back = bus.read_all(MESSAGES.name)
    finally:
        bus.close()
    assert [(r.key, r.value) for r in back] == [("acme:conv-1", b'{"id": "evt-1"}')]
    assert back[0].headers == (("ce_id", b"evt-1"),)
