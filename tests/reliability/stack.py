"""Drive a local stack (deploy/local/stack.sh) and break it: SIGKILL services, the broker, PostgreSQL.

Everything lives in its own data dir and ports, so the shared test servers are never touched.
Services restarted here are started exactly as stack.sh starts them (same env, same pid files),
so `stack.sh status` and `stack.sh down` keep working on them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
SERVICES = ("ingest", "crm", "routing", "analytics", "notifier")
# Fast pollers and a roomy ingest rate limit: the faults, not the limiter, are under test.
TUNING = {
    "SB_OUTBOX_POLL_MS": "100",
    "SB_LOG_LEVEL": "WARNING",
    "SB_INGEST_RATE_PER_S": "100000",
    "SB_INGEST_RATE_BURST": "100000",
}


@dataclass
class LocalStack:
    """One local stack: PostgreSQL, Kafka and the five services, in `data_dir`."""

    data_dir: Path
    kafka_port: int
    pg_port: int
    base_port: int
    extra_env: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ environment
    def _script_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
        return (
            env
            | TUNING
            | self.extra_env
            | {
                "SB_DATA_DIR": str(self.data_dir),
                "SB_KAFKA_PORT": str(self.kafka_port),
                "SB_PG_PORT": str(self.pg_port),
                "SB_STACK_BASE_PORT": str(self.base_port),
            }
        )

    def env(self) -> dict[str, str]:
        """What the stack's processes and the CLI see (stack.sh env + tuning)."""
        out = self._run("stack.sh", "env").stdout
        env = self._script_env()
        for line in out.splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value.strip("'\"")
        return env

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/switchboard"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.base_port + SERVICES.index(service) + 1}"

    def _run(
        self, script: str, *args: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", str(LOCAL / script), *args],
            env=self._script_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{script} {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result

    def cli(self, *args: str) -> str:
        """Run the switchboard CLI against this stack; its stdout."""
        result = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "switchboard"), *args],
            env=self.env(),
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"switchboard {' '.join(args)}:\n{result.stdout}\n{result.stderr}")
        return result.stdout.strip()

    # ------------------------------------------------------------ whole stack
    def up(self) -> None:
        """`stack.sh up`, again while a service is slow to get ready (it waits 60 s; a shared
        machine can take longer): running services are left alone and waited for again."""
        for attempt in range(5):
            try:
                self._run("stack.sh", "up", timeout=900)
                return
            except RuntimeError:
                if attempt == 4:
                    raise

    def down(self) -> None:
        self._run("stack.sh", "down", timeout=300)

    # ------------------------------------------------------------ services
    @property
    def _stack_dir(self) -> Path:
        return self.data_dir / "stack"

    def service_pid(self, service: str) -> int | None:
        try:
            pid = int((self._stack_dir / f"{service}.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def kill_service(self, service: str) -> None:
        """SIGKILL: no drain, no commit, no outbox flush."""
        pid = self.service_pid(service)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_dead(pid)

    def start_service(self, service: str) -> None:
        """Start `python -m <service>` as stack.sh does (log appended, pid file written)."""
        if self.service_pid(service) is not None:
            return
        port = self.base_port + SERVICES.index(service) + 1
        env = self.env() | {"SB_PORT": str(port), "SB_HOST": "127.0.0.1"}
        with (self._stack_dir / f"{service}.log").open("ab") as log:
            proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "python"), "-m", service],
                cwd=self._stack_dir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self._stack_dir / f"{service}.pid").write_text(str(proc.pid))

    def wait_ready(self, service: str, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.service_pid(service) is None:  # it exited (e.g. no broker at start):
                self.start_service(service)  # restarted, as a supervisor or Kubernetes would
            try:
                with urllib.request.urlopen(self.url(service) + "/readyz", timeout=3) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{service} not ready after {timeout_s} s")

    # ------------------------------------------------------------ broker
    def kill_kafka(self) -> None:
        self._run("kafka.sh", "kill")

    def start_kafka(self) -> None:
        self._until_started("kafka.sh")

    def _until_started(self, script: str, attempts: int = 5) -> None:
        """`<script> start`, again while it times out (a loaded machine); a live process is
        waited for, not started twice."""
        for attempt in range(attempts):
            try:
                self._run(script, "start")
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise

    # ------------------------------------------------------------ PostgreSQL
    def _pg_pids(self) -> list[int]:
        pgdata = self.data_dir / f"pg-{self.pg_port}"
        try:
            postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True
        ).stdout.split()
        return [postmaster, *(int(c) for c in children)]

    def restart_pg_immediate(self) -> None:
        """`pg_ctl stop -m immediate` (SIGQUIT to the postmaster: no checkpoint), then start."""
        pids = self._pg_pids()
        if pids:
            os.kill(pids[0], signal.SIGQUIT)
            _wait_dead(pids[0])
        self._until_started("postgres.sh")

    def pause_pg(self, seconds: float) -> None:
        """SIGSTOP the postmaster and every backend, then SIGCONT them: a frozen database."""
        pids = self._pg_pids()
        for pid in pids:
            _signal(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            for pid in pids:
                _signal(pid, signal.SIGCONT)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_dead(pid: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:  # our own children would otherwise stay zombies
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
