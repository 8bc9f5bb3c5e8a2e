"""Start `candor sink --all` and `candor worker` against freshly started brokers.

    python -m tests.integration.service_starts --starts 20

Each start is what a new user's first `candor demo` does: a broker whose
storage was formatted a moment ago (so its group coordinator is still
loading), the topics created just before the services start, consent granted,
a few thousand simulated events published while the services come up. A start
passes when neither service died before it was stopped, ClickHouse holds
exactly the accepted events of that start (each once), and both services exit
0 on SIGTERM.

The broker is this machine's deploy/local/kafka.sh with its own ports and its
own state directory (`--home`, default /tmp/candor-service-starts); it never
touches the stack the tests share. ClickHouse is the one of the environment
(`CANDOR_CLICKHOUSE_URL`), each start in a database of its own.

A crash shows as an exit status below zero (the signal). Core dumps are
enabled for the two services; a core is read with `gdb -batch -ex bt` (when
gdb is installed), the backtrace printed and the core deleted. The kernel's
log is counted before and after (`dmesg`, when readable), but note that a
process with a SIGSEGV handler (the services enable faulthandler) is not
reported there: the exit status is the check that counts.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from candor.demo import compare_landed, describe_exit, log_tail
from candor.settings import (
    REPO_ROOT,
    ClickHouseSettings,
    KafkaSettings,
    Settings,
    child_env,
)
from producers.sdk.envelope import Event
from producers.simulator.simulator import Simulator

KAFKA_SH = REPO_ROOT / "deploy" / "local" / "kafka.sh"
CRASH_LINES = re.compile(r"segfault|general protection|traps:")


class FreshBroker:
    """One Kafka node on `port`/`controller_port` whose storage is formatted
    anew at every `start` (deploy/local/kafka.sh under `home`)."""

    def __init__(self, home: Path, port: int, controller_port: int) -> None:
        self.home, self.port, self.controller_port = home, port, controller_port
        self.bootstrap = f"127.0.0.1:{port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CANDOR_HOME": str(self.home),
            "CANDOR_KAFKA_PORT": str(self.port),
            "CANDOR_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "CANDOR_KAFKA_HEAP": os.environ.get("CANDOR_KAFKA_HEAP", "384m"),
        }

    def _script(self, action: str) -> None:
        proc = subprocess.run(
            ["bash", str(KAFKA_SH), action],
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"kafka.sh {action} failed (exit {proc.returncode}):\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )

    def start(self) -> None:
        """Wipe the data directory, format, start; blocks until the port listens."""
        kafka = self.home / "kafka"
        kafka.mkdir(parents=True, exist_ok=True)
        libs = kafka / "libs"
        shared = REPO_ROOT / ".candor" / "kafka" / "libs"
        if not libs.exists() and (shared / ".pom.sha256").exists():
            libs.symlink_to(shared)  # the jars the default stack resolved; else kafka.sh fetches
        shutil.rmtree(kafka / "data", ignore_errors=True)
        self._script("start")

    def stop(self) -> None:
        """Stop by PID file (TERM, then KILL after 30 s)."""
        self._script("stop")


@dataclass
class StartResult:
    """What one start showed."""

    index: int
    expected: int = 0
    landed: int = 0
    unexpected: int = 0
    duplicated: int = 0
    died: list[str] = field(default_factory=list)  # services that ended before the stop
    exits: dict[str, int | None] = field(default_factory=dict)  # after SIGTERM
    backtraces: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def crashed(self) -> bool:
        return any(code is not None and code < 0 for code in self.exits.values())

    @property
    def ok(self) -> bool:
        return (
            not self.died
            and all(code == 0 for code in self.exits.values())
            and self.landed == self.expected
            and not self.unexpected
            and not self.duplicated
        )

    def line(self) -> str:
        exits = ", ".join(f"{name} {describe_exit(code)}" for name, code in self.exits.items())
        extra = "".join(
            [
                f", {self.unexpected} unexpected" if self.unexpected else "",
                f", {self.duplicated} duplicated" if self.duplicated else "",
                f"; died early: {'; '.join(self.died)}" if self.died else "",
            ]
        )
        return (
            f"start {self.index:>2}: {'ok' if self.ok else 'FAILED'}  "
            f"{self.landed}/{self.expected} events landed{extra}; {exits}  "
            f"({self.seconds:.0f} s)"
        )


class Service:
    """A `candor` service child with core dumps enabled, run in its own directory."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.name, self.workdir, self.log = name, workdir, workdir / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "candor.cli", *args],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_allow_cores,
            )

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, wait up to `timeout` s (then SIGKILL); the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def backtraces(self) -> list[str]:
        """The crashing thread's backtrace of each core this service left; the
        cores are deleted (hundreds of MB each)."""
        found = []
        for core in sorted(self.workdir.glob("core*")):
            text = f"{self.name}: core {core.name}"
            if shutil.which("gdb"):
                bt = subprocess.run(
                    ["gdb", "-batch", "-ex", "bt 15", sys.executable, str(core)],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                frames = [line for line in bt.splitlines() if line.startswith("#")]
                text += "\n" + "\n".join(dict.fromkeys(frames))  # gdb shows frame 0 twice
            core.unlink()
            found.append(text)
        return found


def _allow_cores() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def kernel_crash_lines() -> int | None:
    """Lines of the kernel log that report a crash (None: the log is not readable)."""
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return sum(1 for line in out.splitlines() if CRASH_LINES.search(line))


def _publish(
    settings: Settings, index: int, events: int, rate: float, services: list[Service]
) -> tuple[set[str], list[str]]:
    """Grant consent to simulated people and publish `events` of theirs.

    Returns (the accepted event ids, every device id of the run). The first
    person has no consent: their events must not land."""
    from backends.kafka.consent_registry import grant_many
    from privacy.consent import grant
    from privacy.scope import Scope
    from producers.sdk.client import CaptureClient
    from producers.simulator.simulator import SentEvents, backdated_start, run_simulation
    from schemas.clock import now_micros

    people, seed = 8, time.time_ns() % 1_000_000_007
    sim = _FirstEvents(
        events,
        people,
        seed,
        backdated_start(people, seed, events, now_micros()),
        org_id=f"org-starts-{index}",
    )
    devices = sim.devices
    grant_many(
        settings,
        [
            grant(
                None,
                [s.value for s in Scope],
                "service-starts",
                now_micros(),
                subject_id=d.subject_id,
                org_id=sim.org_id,
                reason="test",
            )
            for d in devices[1:]
        ],
        "service-starts",
    )
    sent = SentEvents()

    def watch(_progress: object) -> None:
        for service in services:
            if not service.running():
                raise RuntimeError(f"{service.name} {describe_exit(service.proc.poll())}")

    with CaptureClient(
        settings.kafka.bootstrap,
        spool_dir=settings.home / "spool",
        org_id=sim.org_id,
        subject_id=devices[0].subject_id,
        device_id=devices[0].device_id,
        topic=settings.kafka.topic("capture.events"),
        spool_fsync="never",
    ) as client:
        run_simulation(sim, client, duration_s=0, rate=rate, progress_callback=watch, sent=sent)
        left = client.close(timeout=30)
    if left:
        raise RuntimeError(f"{left} events were not acknowledged by the broker")
    ids = [d.device_id for d in devices]
    return sent.event_ids(ids[1:]), ids


class _FirstEvents(Simulator):
    """A simulator whose `events()` stops after `limit` events."""

    def __init__(self, limit: int, people: int, seed: int, start_ts: int, org_id: str) -> None:
        super().__init__(people, seed, start_ts, org_id)
        self.limit = limit

    def events(self, duration_s: float) -> Iterator[Event]:
        return itertools.islice(super().events(365 * 86_400.0), self.limit)


def one_start(
    index: int,
    broker: FreshBroker,
    clickhouse_url: str,
    database: str,
    workdir: Path,
    events: int = 3000,
    rate: float = 1000.0,
    land_timeout_s: float = 180.0,
    code: Path | None = None,
) -> StartResult:
    """Fresh broker, topics, consent, sink and worker, events; then stop all.

    `database` is created and migrated for this start, and dropped when the
    start passed: a new broker numbers every partition from offset 0 again,
    and the sink's dedup tokens (topic:partition:first-last) of an earlier
    start would make ClickHouse drop this start's equal batches as replays.
    `code`: run the services from this source tree instead (e.g. an unpacked
    older commit, to show what a fix changed). Blocks; never raises for what
    the services did (see the result)."""
    from backends.clickhouse.connection import connect
    from backends.kafka import topics
    from sinks.migrate import migrate
    from tests.harness import free_port

    result = StartResult(index)
    started = time.monotonic()
    settings = Settings(
        kafka=KafkaSettings(bootstrap=broker.bootstrap),
        clickhouse=ClickHouseSettings(url=clickhouse_url, database=database),
        home=broker.home,
    )
    migrate(settings)
    broker.start()
    services: list[Service] = []
    try:
        topics.create_topics(settings)
        env = child_env(settings, dict(os.environ))
        if code is not None:
            env["PYTHONPATH"] = str(code)
        run_dir = workdir / f"start-{index:02d}"
        shutil.rmtree(run_dir, ignore_errors=True)  # logs and cores of this start only
        services = [
            Service("sink", ["sink", "--all", "--metrics-port", str(free_port())], env, run_dir),
            Service("worker", ["worker", "--metrics-port", str(free_port())], env, run_dir),
        ]
        try:
            expected, devices = _publish(settings, index, events, rate, services)
        except RuntimeError as err:  # a service died (reported below) or the broker refused
            if all(s.running() for s in services):
                result.died.append(str(err))
            expected, devices = set(), []
        result.expected = len(expected)
        ch = connect(settings)
        params = {"d": devices}
        deadline = time.monotonic() + land_timeout_s
        while devices and time.monotonic() < deadline:
            if not all(s.running() for s in services):
                break
            n = int(
                ch.query(
                    "SELECT uniqExact(event_id) FROM events "
                    "WHERE has({d:Array(String)}, device_id)",
                    parameters=params,
                ).result_rows[0][0]
            )
            if n >= len(expected):
                break
            time.sleep(1)
        rows = (
            ch.query(
                "SELECT event_id, count() FROM events FINAL "
                "WHERE has({d:Array(String)}, device_id) GROUP BY event_id",
                parameters=params,
            ).result_rows
            if devices
            else []
        )
        check = compare_landed(expected, {str(e): int(n) for e, n in rows})
        result.landed, result.unexpected = check.landed, check.unexpected
        result.duplicated = check.duplicated
        for service in services:
            if not service.running():
                result.died.append(
                    f"{service.name} {describe_exit(service.proc.poll())}; "
                    f"log: {' | '.join(log_tail(service.log, 3))}"
                )
    finally:
        for service in services:
            result.exits[service.name] = service.stop()
            result.backtraces += service.backtraces()
        broker.stop()
    if result.ok:  # a failed start keeps its database for a look
        connect(settings, database="").command(f"DROP DATABASE IF EXISTS {database}")
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--home", type=Path, default=Path("/tmp/candor-service-starts"))
    parser.add_argument("--port", type=int, default=19192, help="broker port (default 19192)")
    parser.add_argument("--controller-port", type=int, default=19193)
    parser.add_argument("--events", type=int, default=3000, help="events published per start")
    parser.add_argument(
        "--code",
        type=Path,
        default=None,
        help="run the services from this source tree (default: this one)",
    )
    parser.add_argument(
        "--clickhouse-url", default=os.environ.get("CANDOR_CLICKHOUSE_URL", "http://127.0.0.1:8123")
    )
    args = parser.parse_args(argv)
    run_id = uuid.uuid4().hex[:8]
    broker = FreshBroker(args.home, args.port, args.controller_port)
    before = kernel_crash_lines()
    results = []
    for i in range(1, args.starts + 1):
        result = one_start(
            i,
            broker,
            args.clickhouse_url,
            f"candor_starts_{run_id}_{i:02d}",
            args.home / "runs",
            events=args.events,
            code=args.code,
        )
        results.append(result)
        print(result.line(), flush=True)
        for bt in result.backtraces:
            print(bt, flush=True)
    after = kernel_crash_lines()
    ok = sum(r.ok for r in results)
    crashes = sum(r.crashed for r in results)
    kernel = (
        "not readable" if before is None or after is None else f"{before} before, {after} after"
    )
    passed = ok == len(results) and (before is None or before == after)
    print(
        f"{ok} of {len(results)} starts ok, {crashes} crashed; kernel crash lines: {kernel}; "
        f"logs under {args.home / 'runs'}"
        + ("" if passed else f", databases of failed starts kept: candor_starts_{run_id}_NN")
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
