"""`candor demo`: the README's run command — the whole pipeline on the local stack.

Stages, each printed as it runs: topics and migrations; consent for simulated
people (one without consent, one with metadata only, to show enforcement);
a stream worker and the sinks started as child processes (`candor worker`,
`candor sink --all`, logs under $CANDOR_HOME/logs); the simulator publishing
through the capture SDK at a fixed rate with a progress line; waiting until
ClickHouse holds every accepted event; a few analyst queries; a small training
export. With screen frames (`candor.demo_frames`), a gateway child takes the
rendered frames of people consenting to screen_frames, and a computer-use
export shows steps with their screenshots. The child processes are stopped at
the end; the stack keeps running.

The check is exact: the simulator reports the event ids it published per
device, and the demo passes only when ClickHouse holds exactly the accepted
ones (every consenting device's events, once each) and nothing else of this
run's devices. A child that dies is reported at once (its exit status or
signal, and the end of its log) and the demo stops waiting and fails.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backends.kafka import topics
from backends.kafka.consent_registry import grant_many
from candor import stack
from candor.settings import Settings
from privacy.consent import grant
from privacy.scope import Scope
from schemas.clock import now_micros
from schemas.topics import Topic

FULL = [s.value for s in Scope]


class Child:
    """A `candor` child process whose output goes to a log file."""

    def __init__(
        self, name: str, args: list[str], logdir: Path, env: dict[str, str] | None = None
    ) -> None:
        import os  # a child gets our environment plus its own settings

        logdir.mkdir(parents=True, exist_ok=True)
        self.name, self.log = name, logdir / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "candor.cli", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )

    def running(self) -> bool:
        return self.proc.poll() is None

    def report(self, lines: int = 20) -> str:
        """Why the process ended and the last `lines` of its log (for a dead child)."""
        tail = log_tail(self.log, lines)
        shown = "\n".join(f"    | {line}" for line in tail) if tail else "    | (empty log)"
        return (
            f"  the {self.name} process {describe_exit(self.proc.poll())}; "
            f"last lines of {self.log}:\n{shown}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ChildDied(Exception):
    """A child process of the demo ended before the demo stopped it."""

    def __init__(self, child: Child) -> None:
        super().__init__(f"the {child.name} process {describe_exit(child.proc.poll())}")
        self.child = child


def describe_exit(returncode: int | None) -> str:
    """Say how a process ended from its Popen return code (negative: the
    signal that killed it). Pure."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (exit status {returncode})"
    return f"exited with status {returncode}"


def log_tail(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of the text file at `path` ([] if missing)."""
    try:
        with path.open("rb") as f:
            return [raw.decode(errors="replace").rstrip("\n") for raw in deque(f, lines)]
    except FileNotFoundError:
        return []


def _check_children(children: list[Child]) -> None:
    """Raise `ChildDied` for the first child that is no longer running."""
    for child in children:
        if not child.running():
            raise ChildDied(child)


@dataclass(frozen=True)
class LandingCheck:
    """This run's events in ClickHouse against what was accepted."""

    expected: int
    landed: int  # expected event ids found
    missing: int  # expected event ids not found
    unexpected: int  # event ids of this run's devices that were not expected
    duplicated: int  # expected event ids found in more than one row

    @property
    def exact(self) -> bool:
        """Every expected event once, nothing else."""
        return self.landed == self.expected and not self.unexpected and not self.duplicated


def compare_landed(expected: set[str], rows_by_event: Mapping[str, int]) -> LandingCheck:
    """Compare the accepted event ids with ``{event_id: rows}`` read from
    ClickHouse for this run's devices. Pure."""
    found = expected.intersection(rows_by_event)
    return LandingCheck(
        expected=len(expected),
        landed=len(found),
        missing=len(expected) - len(found),
        unexpected=sum(1 for e in rows_by_event if e not in expected),
        duplicated=sum(1 for e in found if rows_by_event[e] > 1),
    )


def _line(text: str) -> None:
    print(f"\r  {text:<76}", end="", flush=True)


def run(
    settings: Settings,
    people: int = 50,
    rate: float = 1000.0,
    duration: float = 60.0,
    seed: int = 1,
    frames_per_person: int = 2,
) -> int:
    """Run the demo. Returns 0 when ClickHouse holds exactly this run's accepted
    events (each once, nothing else of its devices), 1 otherwise, including when
    the worker or the sink died (reported with its exit status and log tail).
    The first ``frames_per_person`` screen frames of each person consenting to
    ``screen_frames`` get pixels, put through a gateway (`candor.demo_frames`);
    0: no frames."""
    from producers.simulator.simulator import Simulator, backdated_start
    from sinks.migrate import migrate

    print("== Candor demo ==")
    for h in stack.status(settings):
        print(f"  {h.server:<11} {'up' if h.up else 'DOWN':<5} {h.endpoint}  {h.detail}")
    print("== topics ==")
    for name, state in topics.create_topics(settings).items():
        print(f"  {name:<20} {state}")
    print("== ClickHouse migrations ==")
    applied = migrate(settings)
    print(f"  applied {applied or 'nothing new'} to database {settings.clickhouse.database}")

    target = int(rate * duration)
    sim_cls = _capped(Simulator, target)
    sim = sim_cls(people, seed, backdated_start(people, seed, target, now_micros()))
    devices = sim.devices
    print(f"== consent for {people} simulated people (simulator seed {seed}) ==")
    policies = [
        grant(
            None,
            FULL,
            "candor-demo",
            now_micros(),
            subject_id=d.subject_id,
            org_id=sim.org_id,
            reason="demo",
        )
        for d in devices[2:]
    ]
    policies.append(
        grant(
            None,
            ["activity_metadata"],
            "candor-demo",
            now_micros(),
            subject_id=devices[1].subject_id,
            org_id=sim.org_id,
            reason="demo",
        )
    )
    grant_many(settings, policies, "candor-demo")
    print(
        f"  {people - 2} with every scope, 1 with activity_metadata only "
        f"({devices[1].subject_id[:8]}…), 1 without consent ({devices[0].subject_id[:8]}…)"
    )

    logdir = settings.home / "logs"
    print(f"== stream worker and sinks (logs in {logdir}) ==")
    # Short session gap and grace so that the demo's sessions close while it runs.
    demo_streams = {
        "CANDOR_STREAMS__SESSION_GAP_S": "15",
        "CANDOR_STREAMS__GRACE_S": "5",
        "CANDOR_STREAMS__MINUTE_QUIET_S": "10",
    }
    children = [
        Child("worker", ["worker", "--metrics-port", "9401"], logdir, demo_streams),
        Child("sink", ["sink", "--all"], logdir),
    ]
    gateway = None
    # A TERM (a supervisor, a test's timeout) ends the demo through `finally`, so
    # that its worker, sink and gateway stop with it instead of running on.
    previous_term = signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        if frames_per_person > 0:
            from candor.demo_frames import start_gateway

            print(
                f"== gateway for screen frames ({frames_per_person} per person with "
                "screen_frames; OCR redaction in one process) =="
            )
            gateway = start_gateway(settings, sim.org_id, devices[2:], logdir)
            if gateway is not None:
                print(f"  serving on {gateway.url}, {len(gateway.tokens)} device tokens")
        return _pipeline(
            settings, sim, target, rate, duration, children, gateway, frames_per_person
        )
    except ChildDied as died:
        print()
        print(died.child.report(), file=sys.stderr)
        print(
            f"== FAILED: {died}; the demo stopped waiting for it. The stack keeps "
            "running (candor stack status) =="
        )
        return 1
    finally:
        for child in children:
            child.stop()
        if gateway is not None:
            gateway.child.stop()
        signal.signal(signal.SIGTERM, previous_term)


def _exit_on_term(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _pipeline(
    settings: Settings,
    sim: Any,
    target: int,
    rate: float,
    duration: float,
    children: list[Child],
    gateway: Any = None,
    frames_per_person: int = 0,
) -> int:
    """Publish, wait for ClickHouse, show queries and an export, check exactly.
    Raises `ChildDied` as soon as a child is seen dead."""
    from backends.clickhouse.connection import connect
    from producers.sdk.client import CaptureClient
    from producers.simulator.devices import DeviceClients
    from producers.simulator.simulator import SentEvents, SimulatedDevice, run_simulation
    from sinks.export import export
    from sinks.queries import format_table, run_query

    devices = sim.devices
    print(f"== simulate {len(devices)} people: {target} events at {rate:.0f}/s ==")
    spool = settings.home / "demo" / "spool"
    sent = SentEvents()

    def progress(p: Any) -> None:
        _line(
            f"published {p.events:>8}/{target}  {p.elapsed_s:5.1f} s  {p.rate_per_s:7.0f} events/s"
        )
        _check_children(children)

    def open_client(device: SimulatedDevice, spool_dir: Path) -> CaptureClient:
        # Each simulated device publishes under its own identity, as real ones do.
        return CaptureClient(
            settings.kafka.bootstrap,
            spool_dir=spool_dir,
            org_id=sim.org_id,
            subject_id=device.subject_id,
            device_id=device.device_id,
            topic=settings.kafka.topic(Topic.CAPTURE_EVENTS),
            spool_fsync="never",
        )

    with DeviceClients(devices, spool, open_client) as clients:
        sink: Any = clients
        if gateway is not None:
            from producers.simulator.upload import FramingSink

            sink = FramingSink(clients, gateway.url, gateway.tokens, frames_per_person)
        run_simulation(
            sim, sink, duration_s=duration, rate=rate, progress_callback=progress, sent=sent
        )
        unacknowledged = clients.close(timeout=30)
    print()
    if unacknowledged:
        print(
            f"  {unacknowledged} events not acknowledged by Kafka (kept in {spool}/<device>)",
            file=sys.stderr,
        )
    # The first person gave no consent: none of their events may land.
    run_devices = [d.device_id for d in devices]
    expected = sent.event_ids(run_devices[1:])
    params = {"o": sim.org_id, "d": run_devices}
    print(
        f"== waiting for ClickHouse ({len(expected)} accepted events of "
        f"{sent.count()} published expected) =="
    )
    ch = connect(settings)
    started = time.monotonic()
    while time.monotonic() - started < 300:
        _check_children(children)
        landed = int(
            ch.query(
                "SELECT uniqExact(event_id) FROM events WHERE org_id = {o:String} "
                "AND has({d:Array(String)}, device_id)",
                parameters=params,
            ).result_rows[0][0]
        )
        _line(f"landed {landed:>8}/{len(expected)}  {time.monotonic() - started:5.1f} s")
        if landed >= len(expected):
            break
        time.sleep(1)
    print()
    rows = ch.query(
        "SELECT event_id, count() FROM events FINAL WHERE org_id = {o:String} "
        "AND has({d:Array(String)}, device_id) GROUP BY event_id",
        parameters=params,
    ).result_rows
    check = compare_landed(expected, {str(e): int(n) for e, n in rows})
    print("== waiting for the last sessions to close (one minute without input) ==")
    started = time.monotonic()
    while time.monotonic() - started < 150:
        _check_children(children)
        in_sessions = int(
            ch.query(
                "SELECT sum(event_ids_count) FROM sessions FINAL WHERE org_id = {o:String} "
                "AND has({d:Array(String)}, device_id)",
                parameters=params,
            ).result_rows[0][0]
        )
        _line(
            f"events in closed sessions {in_sessions:>8}/{check.landed}  "
            f"{time.monotonic() - started:5.1f} s"
        )
        if in_sessions >= check.landed:
            break
        time.sleep(2)
    print()
    if gateway is not None:
        from candor.demo_frames import show_frames

        print("== screen frames (redacted by OCR before storage, encrypted per person) ==")
        show_frames(settings, sink.finish(), [d.subject_id for d in devices[2:]])
    _queries(settings, sim.org_id, run_query, format_table)
    print("== training export ==")
    out = settings.home / "exports" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    result = export(
        settings,
        sim.start_ts,
        now_micros() + 1,
        out,
        progress=lambda p: _line(
            f"exported {p.shards} shards, {p.trajectories} trajectories, {p.actions} actions"
        ),
    )
    print()
    print(
        f"  {result.actions} actions in {result.trajectories} trajectories of "
        f"{result.subjects} consenting subjects -> {out}"
    )
    print(f"  manifest: {out / 'manifest.json'}")
    if gateway is not None:
        from candor.demo_frames import show_computer_use

        print("== computer-use export (screenshot before each action, PyAutoGUI actions) ==")
        show_computer_use(
            settings, sim.start_ts, now_micros() + 1, out.with_name(out.name + "-computer-use")
        )
    _portal_invite(settings, sim.devices[-1].subject_id)
    extra = "".join(
        [
            f", {check.unexpected} unexpected" if check.unexpected else "",
            f", {check.duplicated} duplicated" if check.duplicated else "",
        ]
    )
    print(
        f"== {'done' if check.exact else 'INCOMPLETE'}: {check.landed}/{check.expected} "
        f"accepted events of this run in ClickHouse{extra}; the stack keeps running "
        f"(candor stack status) =="
    )
    return 0 if check.exact else 1


def _portal_invite(settings: Settings, subject: str) -> None:
    """Leave the person's portal running (like the stack) and print a one-time
    sign-in link for one simulated person. A portal that does not start is
    reported, not fatal: the pipeline's own results stand."""
    from candor.portal.cli import invite_link

    print("== the person's own portal ==")
    if not stack.start_portal(settings):
        log = settings.home / "logs" / "portal.log"
        why = log_tail(log, 1)
        print(f"  the portal did not start; see {log}" + (f":\n    {why[0]}" if why else ""))
        return
    print(f"  running on {settings.portal.public_url} (stopped by candor stack down)")
    print(
        f"  sign-in link for simulated person {subject[:8]}… (one use): "
        f"{invite_link(settings, subject)}"
    )


def _capped(base: Any, limit: int) -> Any:
    class Capped(base):  # type: ignore[misc]
        """Enough simulated time for `limit` events, cut there."""

        def events(self, duration_s: float) -> Iterator[dict[str, Any]]:
            return itertools.islice(super().events(365 * 86_400.0), limit)

    return Capped


def _queries(settings: Settings, org: str, run_query: Any, format_table: Any) -> None:
    today = datetime.now(UTC).date()
    days = {"org_id": org, "day_from": str(today - timedelta(days=1)), "day_to": str(today)}
    shown = [
        ("active_time_per_app", days),
        ("sessions_per_person", days),
        ("commands_run", {**days, "top": "5"}),
        ("dead_letters_by_reason", {"since": "2000-01-01 00:00:00"}),
    ]
    for name, params in shown:
        print(f"== query {name} ==")
        columns, rows = run_query(settings, name, params)
        lines = format_table(columns, rows[:8]).splitlines()
        if len(rows) > 8:  # the table's own "(8 rows)" line would mislead
            lines[-1] = f"(first 8 of {len(rows)} rows)"
        print("\n".join("  " + line for line in lines))
