"""What the processes of a benchmark run use, read from /proc and from their
Prometheus endpoints: RSS, CPU seconds, the machine's busy cores, a sampler of
them per phase, and the totals of a histogram (the sink's inserts, the
worker's garbage-collection pauses).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """VmRSS of a process (MB), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core, /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def server_pids(stack_home: Path) -> dict[str, int]:
    """The local stack's Kafka and ClickHouse processes (deploy/local pidfiles
    under `stack_home`), those alive: their CPU is sampled with the pipeline's."""
    found = {}
    for name, pidfile in (
        ("kafka", stack_home / "kafka" / "kafka.pid"),
        ("clickhouse", stack_home / "clickhouse" / "clickhouse.pid"),
    ):
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if Path(f"/proc/{pid}").exists():
            found[name] = pid
    return found


@dataclass
class PhaseUsage:
    """Per process: peak RSS (MB) during a phase and CPU used (cores)."""

    rss_max_mb: dict[str, float] = field(default_factory=dict)
    cpu_cores: dict[str, float] = field(default_factory=dict)


class Sampler:
    """Samples the RSS of named PIDs every `interval` s in a thread; `phase()`
    starts a new measurement, `end()` returns it."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        self.pids, self.interval = pids, interval
        self._lock = threading.Lock()
        self._peak: dict[str, float] = {}
        self._cpu0: dict[str, float] = {}
        self._busy0 = machine_busy_s()
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        with self._lock:
            for name, pid in self.pids.items():
                self._peak[name] = max(self._peak.get(name, 0.0), rss_mb(pid))

    def phase(self) -> None:
        with self._lock:
            self._peak = {}
            self._cpu0 = {name: cpu_s(pid) for name, pid in self.pids.items()}
            self._busy0 = machine_busy_s()
            self._t0 = time.monotonic()
        self._sample()

    def end(self) -> PhaseUsage:
        self._sample()
        with self._lock:
            wall = max(1e-6, time.monotonic() - self._t0)
            cores = {n: (cpu_s(p) - self._cpu0.get(n, 0.0)) / wall for n, p in self.pids.items()}
            cores["machine"] = (machine_busy_s() - self._busy0) / wall
            return PhaseUsage(dict(self._peak), cores)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def histogram_totals(port: int, metric: str, labels: str = "") -> tuple[float, float]:
    """(count, sum) of Prometheus histogram `metric` so far, summed over its
    series whose labels start with `labels` (e.g. 'table="events"'), from the
    /metrics on 127.0.0.1:`port`; (nan, nan) when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return float("nan"), float("nan")
    found = {"count": 0.0, "sum": 0.0}
    for line in text.splitlines():
        for what in found:
            if line.startswith(f"{metric}_{what}{{{labels}"):
                found[what] += float(line.rsplit(" ", 1)[1])
    return found["count"], found["sum"]


def sink_inserts(port: int, table: str = "events") -> tuple[float, float]:
    """(inserts, seconds spent inserting) into `table` so far, from the sink's
    /metrics (candor_sink_insert_seconds)."""
    return histogram_totals(port, "candor_sink_insert_seconds", f'table="{table}"')


def worker_gc(port: int) -> tuple[float, float]:
    """(collections, seconds they paused the worker) so far, every generation,
    from the worker's /metrics (candor_worker_gc_pause_seconds)."""
    return histogram_totals(port, "candor_worker_gc_pause_seconds")
