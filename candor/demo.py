"""`candor demo`: the README's run command — the whole pipeline on the local stack.

Stages, each printed as it runs: topics and migrations; consent for simulated
people (one without consent, one with metadata only, to show enforcement);
a stream worker and the sinks started as child processes (`candor worker`,
`candor sink --all`, logs under $CANDOR_HOME/logs); the simulator publishing
through the capture SDK at a fixed rate with a progress line; waiting until
ClickHouse holds every accepted event; a few analyst queries; a small training
export. The child processes are stopped at the end; the stack keeps running.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from candor import stack, topics
from candor.consent_registry import grant_many, now_micros
from candor.settings import Settings
from privacy.consent import grant
from privacy.scope import Scope

FULL = [s.value for s in Scope]


class Child:
    """A `candor` child process whose output goes to a log file."""

    def __init__(self, name: str, args: list[str], logdir: Path,
                 env: dict[str, str] | None = None) -> None:
        import os  # a child gets our environment plus its own settings

        logdir.mkdir(parents=True, exist_ok=True)
        self.name, self.log = name, logdir / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "candor.cli", *args],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **(env or {})})

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _line(text: str) -> None:
    print(f"\r  {text:<76}", end="", flush=True)


def run(settings: Settings, people: int = 50, rate: float = 1000.0,
        duration: float = 60.0, seed: int = 1) -> int:
    """Run the demo; returns 0 when every accepted event landed in ClickHouse."""
    from producers.client import CaptureClient
    from producers.simulator import Simulator, backdated_start, run_simulation
    from sinks.connection import connect
    from sinks.export import export
    from sinks.migrate import migrate
    from sinks.queries import format_table, run_query

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
    policies = [grant(None, FULL, "candor-demo", now_micros(), subject_id=d.subject_id,
                      org_id=sim.org_id, reason="demo") for d in devices[2:]]
    policies.append(grant(None, ["activity_metadata"], "candor-demo", now_micros(),
                          subject_id=devices[1].subject_id, org_id=sim.org_id, reason="demo"))
    grant_many(settings, policies, "candor-demo")
    print(f"  {people - 2} with every scope, 1 with activity_metadata only "
          f"({devices[1].subject_id[:8]}…), 1 without consent ({devices[0].subject_id[:8]}…)")

    logdir = settings.home / "logs"
    print(f"== stream worker and sinks (logs in {logdir}) ==")
    # Short session gap and grace so that the demo's sessions close while it runs.
    demo_streams = {"CANDOR_STREAMS__SESSION_GAP_S": "15", "CANDOR_STREAMS__GRACE_S": "5",
                    "CANDOR_STREAMS__MINUTE_QUIET_S": "10"}
    children = [Child("worker", ["worker", "--metrics-port", "9401"], logdir, demo_streams),
                Child("sink", ["sink", "--all"], logdir)]
    try:
        print(f"== simulate {people} people: {target} events at {rate:.0f}/s ==")
        spool = settings.home / "demo" / "spool"
        with CaptureClient(settings.kafka.bootstrap, spool_dir=spool, org_id=sim.org_id,
                           subject_id=devices[0].subject_id, device_id=devices[0].device_id,
                           topic=settings.kafka.topic("capture.events"),
                           spool_fsync="never") as client:
            final = run_simulation(
                sim, client, duration_s=duration, rate=rate,
                progress_callback=lambda p: _line(
                    f"published {p.events:>8}/{target}  {p.elapsed_s:5.1f} s  "
                    f"{p.rate_per_s:7.0f} events/s"))
            client.close(timeout=30)
        print()
        accepted = final.events - sum(1 for e in sim.events(duration)
                                      if e["subject_id"] == devices[0].subject_id)
        print(f"== waiting for ClickHouse ({accepted} accepted events expected) ==")
        ch = connect(settings)
        started = time.monotonic()
        landed = 0
        while time.monotonic() - started < 300:
            landed = int(ch.query("SELECT uniqExact(event_id) FROM events WHERE org_id = "
                                  "{o:String} AND ts >= fromUnixTimestamp64Micro({t:Int64})",
                                  parameters={"o": sim.org_id, "t": sim.start_ts}
                                  ).result_rows[0][0])
            _line(f"landed {landed:>8}/{accepted}  {time.monotonic() - started:5.1f} s")
            if landed >= accepted or not all(c.running() for c in children):
                break
            time.sleep(1)
        print()
        print("== waiting for the last sessions to close (one minute without input) ==")
        started = time.monotonic()
        while time.monotonic() - started < 150 and all(c.running() for c in children):
            in_sessions = int(ch.query(
                "SELECT sum(event_ids_count) FROM sessions FINAL WHERE org_id = {o:String} "
                "AND start_ts >= fromUnixTimestamp64Micro({t:Int64})",
                parameters={"o": sim.org_id, "t": sim.start_ts}).result_rows[0][0])
            _line(f"events in closed sessions {in_sessions:>8}/{landed}  "
                  f"{time.monotonic() - started:5.1f} s")
            if in_sessions >= landed:
                break
            time.sleep(2)
        print()
        if not all(c.running() for c in children):
            print("  a child process stopped; see its log above", file=sys.stderr)
        _queries(settings, sim.org_id, run_query, format_table)
        print("== training export ==")
        out = settings.home / "exports" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        result = export(settings, sim.start_ts, now_micros() + 1, out,
                        progress=lambda p: _line(
                            f"exported {p.shards} shards, {p.trajectories} trajectories, "
                            f"{p.actions} actions"))
        print()
        print(f"  {result.actions} actions in {result.trajectories} trajectories of "
              f"{result.subjects} consenting subjects -> {out}")
        print(f"  manifest: {out / 'manifest.json'}")
        ok = landed >= accepted
        print(f"== {'done' if ok else 'INCOMPLETE'}: {landed}/{accepted} accepted events "
              f"in ClickHouse; the stack keeps running (candor stack status) ==")
        return 0 if ok else 1
    finally:
        for child in children:
            child.stop()


def _capped(base: Any, limit: int) -> Any:
    class Capped(base):  # type: ignore[misc]
        """Enough simulated time for `limit` events, cut there."""

        def events(self, duration_s: float) -> Iterator[dict[str, Any]]:
            return itertools.islice(super().events(365 * 86_400.0), limit)

    return Capped


def _queries(settings: Settings, org: str, run_query: Any, format_table: Any) -> None:
    today = datetime.now(UTC).date()
    days = {"org_id": org, "day_from": str(today - timedelta(days=1)), "day_to": str(today)}
    shown = [("active_time_per_app", days), ("sessions_per_person", days),
             ("commands_run", {**days, "top": "5"}),
             ("dead_letters_by_reason", {"since": "2000-01-01 00:00:00"})]
    for name, params in shown:
        print(f"== query {name} ==")
        columns, rows = run_query(settings, name, params)
        lines = format_table(columns, rows[:8]).splitlines()
        if len(rows) > 8:  # the table's own "(8 rows)" line would mislead
            lines[-1] = f"(first 8 of {len(rows)} rows)"
        print("\n".join("  " + line for line in lines))
