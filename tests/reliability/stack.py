"""Drive a local stack (deploy/local/stack.sh) and break it: SIGKILL services, the broker, PostgreSQL.

Everything lives in its own data dir and ports, so the shared test servers are never touched.
Services restarted here are started exactly as stack.sh starts them (same env, same pid files),
so `stack.sh status` and `stack.sh down` keep working on them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tests.e2e import deployments

ROOT = deployments.ROOT
SERVICES = deployments.SERVICE_NAMES
# Fast pollers and roomy rate limits: the faults, not the limiter, are under test.
TUNING = {
    "SB_OUTBOX_POLL_MS": "100",
    "SB_LOG_LEVEL": "WARNING",
    "SB_INGEST_RATE_PER_S": "100000",
    "SB_INGEST_RATE_BURST": "100000",
    "SB_API_RATE_PER_S": "100000",
    "SB_API_RATE_BURST": "100000",
}


@dataclass
class LocalStack(deployments.LocalStack):
    """The e2e suite's local stack, plus faults: killed services, broker and PostgreSQL."""

    def __post_init__(self) -> None:
        self.settings = TUNING | self.settings

    def up(self, *, fresh: bool = False, attempts: int = 5, timeout_s: float = 900) -> None:
        """`stack.sh up` on the data dir as it is, asked again while a service is slow to get
        ready (it waits SB_START_TIMEOUT_S, 180 s; a shared machine can take longer)."""
        super().up(fresh=fresh, attempts=attempts, timeout_s=timeout_s)

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
        env = self.process_env() | {"SB_PORT": str(port), "SB_HOST": "127.0.0.1"}
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
    def logged(self, event: str, since: datetime) -> list[tuple[str, dict[str, object]]]:
        """The services' JSON log lines named `event` written at or after `since`."""
        found = []
        for service in SERVICES:
            path = self._stack_dir / f"{service}.log"
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if event not in line:
                    continue
                try:
                    entry = json.loads(line)
                    at = datetime.fromisoformat(str(entry.get("timestamp")))
                except ValueError:
                    continue
                if entry.get("event") == event and at >= since:
                    found.append((service, entry))
        return found

    def kill_kafka(self) -> None:
        self.script("kafka.sh", "kill")

    def start_kafka(self) -> None:
        self._until_started("kafka.sh")

    def _until_started(self, script: str, attempts: int = 5) -> None:
        """`<script> start`, again while it times out (a loaded machine); a live process is
        waited for, not started twice."""
        for attempt in range(attempts):
            try:
                self.script(script, "start")
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
