"""CPU and memory of processes from /proc: how the benches charge work to PostgreSQL, Kafka
and the services' processes, which they do not run in their own interpreter."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stat:
    """A process's user + system CPU seconds so far, resident memory and parent pid."""

    cpu_s: float = 0.0
    rss: int = 0
    ppid: int = 0


def stat(pid: int) -> Stat:
    """The process's figures; zeros when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return Stat()
    return Stat((int(fields[11]) + int(fields[12])) / TICK, rss_pages * PAGE, int(fields[1]))


def machine_busy_s() -> float:
    """Every core's busy time so far (idle and iowait excluded), in seconds."""
    jiffies = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(jiffies) - jiffies[3] - jiffies[4]) / TICK


def postgres_pids(data_dir: Path, pg_port: int | str) -> list[int]:
    """The postmaster started by deploy/local/postgres.sh under `data_dir` and its children
    (backends that exit take their CPU with them; the services' pools keep theirs alive)."""
    pm_file = Path(data_dir) / f"pg-{pg_port}" / "postmaster.pid"
    postmaster = int(pm_file.read_text().splitlines()[0])
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [postmaster, *(pid for pid in children if stat(pid).ppid == postmaster)]


def kafka_pid(data_dir: Path, kafka_port: int | str) -> int:
    """The broker started by deploy/local/kafka.sh under `data_dir`."""
    return int((Path(data_dir) / f"kafka-{kafka_port}" / "kafka.pid").read_text())


def servers_cpu(data_dir: Path, kafka_port: int | str, pg_port: int | str) -> dict[str, float]:
    """CPU seconds so far of the bench's "PostgreSQL" and "Kafka"; a server whose pid file is
    not there is left out."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        out["PostgreSQL"] = sum(stat(pid).cpu_s for pid in postgres_pids(data_dir, pg_port))
    with contextlib.suppress(OSError, ValueError, IndexError):
        out["Kafka"] = stat(kafka_pid(data_dir, kafka_port)).cpu_s
    return out


def bench_servers_cpu() -> dict[str, float]:
    """`servers_cpu` of the servers a bench uses: under SB_DATA_DIR (.data), on SB_KAFKA_PORT
    (19092) and SB_PG_PORT (15432), the benches' own defaults."""
    data_dir = Path(os.environ.get("SB_DATA_DIR", Path(__file__).parents[1] / ".data"))
    kafka, pg = os.environ.get("SB_KAFKA_PORT", "19092"), os.environ.get("SB_PG_PORT", "15432")
    return servers_cpu(data_dir, kafka, pg)
