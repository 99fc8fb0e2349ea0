"""The run modes of ARCHITECTURE §5: embedded (`make run`) and the local stack (`make up/down`).

Every process here is real: the embedded server and the stack's services are started as
subprocesses and spoken to over HTTP. Nothing is skipped: a mode that cannot start fails.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sbkit.settings import KitSettings
from tests.conftest import free_port
from tests.fakes.processes import sigterm_and_wait

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
SWITCHBOARD = VENV_BIN / "switchboard"
STACK = ROOT / "deploy" / "local" / "stack.sh"
SERVICES = ("ingest", "crm", "routing", "analytics", "notifier")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _wait_status(
    url: str,
    status: int,
    timeout_s: float,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> bytes:
    deadline = time.monotonic() + timeout_s
    last: tuple[int, bytes] = (0, b"")
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(
                f"server exited with {proc.returncode} before {url} answered:\n{_tail(log)}"
            )
        last = _get(url)
        if last[0] == status:
            return last[1]
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer {status} within {timeout_s} s (last: {last}):\n{_tail(log)}")


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _embedded_env(data: Path) -> dict[str, str]:
    """Embedded mode with every piece of state inside `data` (never the repo's .data)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
    env.update(
        SB_DATA_DIR=str(data),
        SB_BUS="local",
        SB_LOCAL_BUS_PATH=str(data / "bus.db"),
        SB_DATABASE_URL=f"sqlite+aiosqlite:///{data}/{{service}}.db",
        SB_AUTH_KEY_DIR=str(data / "keys"),
        SB_LOG_JSON="false",
    )
    return env


@contextmanager
def _embedded(
    data: Path, port: int, log_name: str = "server.log"
) -> Iterator[subprocess.Popen[bytes]]:
    """`switchboard run --port PORT` in its own cwd; killed (SIGKILL) if still running at exit."""
    log = data / log_name
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(SWITCHBOARD), "run", "--port", str(port)],
            cwd=data,
            env=_embedded_env(data),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _cli(data: Path, *args: str) -> str:
    result = subprocess.run(
        [str(SWITCHBOARD), *args],
        cwd=data,
        env=_embedded_env(data),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, (
        f"switchboard {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout.strip()


# ---------------------------------------------------------------- embedded mode


def test_make_run_invokes_switchboard_run_on_default_port() -> None:
    out = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAKEFLAGS": ""},
    )
    assert out.returncode == 0, out.stderr
    commands = [line for line in out.stdout.splitlines() if "switchboard run" in line]
    assert commands, f"`make run` does not invoke `switchboard run`:\n{out.stdout}"
    # No --port/--host override: the CLI default (127.0.0.1:8000) applies.
    assert commands[-1].strip().endswith("switchboard run"), commands
    from switchboard.cli import run

    params = inspect.signature(run).parameters
    assert params["port"].default == 8000
    assert params["host"].default == "127.0.0.1"


def test_make_run_answers_healthz_on_8000(tmp_path: Path) -> None:
    """What `make run` starts (switchboard run), on a free port with its data in tmp."""
    port = free_port()
    with _embedded(tmp_path, port) as proc:
        base = f"http://127.0.0.1:{port}"
        _wait_status(f"{base}/healthz", 200, 30, proc, tmp_path / "server.log")
        body = json.loads(_wait_status(f"{base}/readyz", 200, 30, proc, tmp_path / "server.log"))
        assert body["checks"]["consumers"] is True
        code = sigterm_and_wait(proc, settings=KitSettings(), log=tmp_path / "server.log")
        log = (tmp_path / "server.log").read_text(errors="replace")
        # Clean = the lifespan shutdown ran to the end (consumers drained, outbox flushed).
        assert "Application shutdown complete" in log and "service.stopped" in log, log
        # a graceful shutdown ends with status 0 (sbkit.serve stops uvicorn re-raising SIGTERM)
        assert code == 0, f"exit status {code}:\n{_tail(tmp_path / 'server.log')}"
    assert not (tmp_path / ".data").exists(), "embedded mode wrote outside its configured data dir"


_PUBLISHER = textwrap.dedent(
    """
    import asyncio, sys
    from sbkit.bus.local import LocalBus
    from sbkit.bus.ports import OutgoingRecord

    async def main(path, n):
        bus = LocalBus(path)
        for i in range(n):
            await bus.publish([OutgoingRecord(topic="t.acks", key=f"k{i % 7}", value=str(i).encode())])
            print(f"ack {i}", flush=True)

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def test_embedded_kill_minus_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    # 1. Bus level: every publish that returned survives SIGKILL, exactly once.
    path = tmp_path / "bus.db"
    proc = subprocess.Popen(
        [str(VENV_BIN / "python"), "-c", _PUBLISHER, str(path), "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    acked: list[int] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        acked.append(int(line.split()[1]))
        if len(acked) == 300:
            proc.kill()
            break
    proc.wait(10)
    acked.extend(int(line.split()[1]) for line in proc.stdout.read().splitlines() if line)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    assert len(acked) >= 300 and len(acked) < 100000, "the publisher was not killed mid-way"

    check = subprocess.run(
        [
            str(VENV_BIN / "python"),
            "-c",
            "import sys; from sbkit.bus.local import LocalBus\n"
            "print(' '.join(r.value.decode() for r in LocalBus(sys.argv[1]).read_all('t.acks')))",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    stored = [int(v) for v in check.stdout.split()]
    assert len(stored) == len(set(stored)), "a record is stored twice"
    missing = set(acked) - set(stored)
    assert not missing, f"acknowledged records lost after kill -9: {sorted(missing)[:10]}"
    assert len(stored) - len(acked) <= 1, "more records than publishes in flight"

    # 2. Server level: tenant, token and revocation written before a kill -9 survive it.
    port = free_port()
    log = tmp_path / "server.log"
    with _embedded(tmp_path, port) as server:
        _wait_status(f"http://127.0.0.1:{port}/readyz", 200, 30, server, log)
        tenant = _cli(tmp_path, "tenant", "create", "acme")
        assert tenant == "acme"
        token = _cli(tmp_path, "token", "mint", "--tenant", "acme", "--scope", "messages:write")
        assert token.count(".") == 2
        server.send_signal(signal.SIGKILL)
        server.wait(10)
    with _embedded(tmp_path, port, "server2.log") as server:
        _wait_status(f"http://127.0.0.1:{port}/readyz", 200, 30, server, tmp_path / "server2.log")
        # The tenant is still registered (a duplicate is refused) and the key still verifies.
        dup = subprocess.run(
            [str(SWITCHBOARD), "tenant", "create", "acme"],
            cwd=tmp_path,
            env=_embedded_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert dup.returncode != 0 and "exists" in dup.stderr
        verify = subprocess.run(
            [
                str(VENV_BIN / "python"),
                "-c",
                "import sys\nfrom sbkit.settings import KitSettings\n"
                "from sbkit.wiring import build_verifier\n"
                "print(build_verifier(KitSettings()).verify(sys.argv[1]))",
                token,
            ],
            cwd=tmp_path,
            env=_embedded_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert verify.returncode == 0, verify.stderr
        assert "acme" in verify.stdout
        # The control topic still holds the TenantCreated event published before the kill.
        control = subprocess.run(
            [
                str(VENV_BIN / "python"),
                "-c",
                "import sys; from sbcontracts.topics import CONTROL; from sbkit.bus.local import LocalBus\n"
                "print(len(LocalBus(sys.argv[1]).read_all(CONTROL.name)))",
                str(tmp_path / "bus.db"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert control.returncode == 0, control.stderr
        assert int(control.stdout) >= 1
        stopped = sigterm_and_wait(server, settings=KitSettings(), log=tmp_path / "server2.log")
        assert stopped in (0, -signal.SIGTERM)


# ---------------------------------------------------------------- local stack


# Ports below Linux's ephemeral range (32768-60999): there, any outgoing connection of the
# machine may hold the port (crm failed to bind 38002 while other stacks were busy).
STACK_ENV = {
    "SB_DATA_DIR": str(ROOT / ".data" / "test-stack"),
    "SB_KAFKA_PORT": "19892",
    "SB_PG_PORT": "16232",
    "SB_STACK_BASE_PORT": "9300",
}


def _stack(action: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
    return subprocess.run(
        ["bash", str(STACK), action],
        env={**env, **STACK_ENV},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.timeout(480)
def test_stack_up_brings_five_ready_services_and_down_stops_them() -> None:
    ports = [int(STACK_ENV["SB_STACK_BASE_PORT"]) + i for i in range(1, 6)]
    stack_dir = Path(STACK_ENV["SB_DATA_DIR"]) / "stack"
    pids: list[int] = []
    try:
        up = _stack("up")
        assert up.returncode == 0, f"stack.sh up failed:\n{up.stdout}\n{up.stderr}"
        for svc, port in zip(SERVICES, ports, strict=True):
            status, body = _get(f"http://127.0.0.1:{port}/readyz")
            assert status == 200, f"{svc} on {port}: {status} {body!r}"
            checks = json.loads(body)["checks"]
            assert checks["consumers"] is True and checks["bus"] is True, checks
            assert checks[f"db.{svc}"] is True, checks
            pids.append(int((stack_dir / f"{svc}.pid").read_text()))
        listed = _stack("status", 60)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        again = _stack("up")  # idempotent: running services are left alone
        assert again.returncode == 0, again.stderr
        assert [int((stack_dir / f"{s}.pid").read_text()) for s in SERVICES] == pids
    finally:
        down = _stack("down", 180)
    assert down.returncode == 0, f"stack.sh down failed:\n{down.stdout}\n{down.stderr}"
    kafka, pg = int(STACK_ENV["SB_KAFKA_PORT"]), int(STACK_ENV["SB_PG_PORT"])
    for port in [*ports, kafka, kafka + 1, pg]:
        assert not _port_open(port), f"port {port} still open after down"
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    assert _stack("down", 60).returncode == 0, "down on a stopped stack must succeed"
    assert _stack("status", 60).returncode != 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
