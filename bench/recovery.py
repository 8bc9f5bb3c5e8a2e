"""Recovery of a stream worker holding many open sessions: kill -9, restart, resume.

    .venv/bin/python bench/recovery.py [--sessions 100000] [--runs 1] [--timeout 600]

Each run, on its own topic prefix (bench-recovery-<random>.) on the Kafka of
the settings and its own ClickHouse database (the worker's key store), both
deleted at the end:

1. hold: ``--sessions`` devices with 3 clicks each (bench/worker.py's
   memory-phase input: two folded into an open session, one buffered) are
   produced, consent granted to their subjects, and a `candor worker`
   (session gap 2 h, so nothing closes) reads them; once it has taken in
   every event (``candor_worker_events_in_total``) and its
   ``candor_worker_open_sessions`` gauge shows them all, its VmRSS is read;
2. kill: the worker gets SIGKILL (nothing flushed, no leave-group), and a new
   worker with the same app id (consumer group, changelog topics) is started
   at once; one click of a new device (the probe) is produced;
3. measured from that start: ``recovered``, until the new worker's gauge
   shows the sessions again (the timer sets it only when no recovery is
   running, every ``timer_interval_s``: up to that much late); ``resumed``,
   until the probe's clean output appears on capture.clean; and the new
   worker's VmRSS when recovered. Both include the group's rebalance, which
   waits for the killed member's session timeout (the worker's
   ``broker_session_timeout``, 30 s) before it assigns anything.

Prints a line per run (progress on stderr) and the medians. Target (issue
12): a restarted worker holding 100,000 sessions recovers in <= 60 s.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from environment import free_port
from worker import (
    SCOPES,
    SESSION_EVENTS,
    SESSION_GAP_S,
    drop_topics,
    log_tail,
    now_micros,
    open_sessions,
    produce,
    rss_mb,
    say,
    session_events,
    start_worker,
)

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many
from backends.kafka.topics import create_topics
from candor.settings import Settings, load_settings, replace
from privacy.consent import grant
from schemas.codec import encode_event
from sinks.migrate import migrate

PROBE = "dev-bench-recovery-probe"
SUBJECTS = 400


@dataclass(frozen=True)
class Recovery:
    sessions: int
    rss_held_mb: float  # the first worker, holding the sessions
    recovered_s: float  # new worker start -> its gauge shows the sessions again
    resumed_s: float  # new worker start -> the probe's clean output
    rss_recovered_mb: float


def probe_event(org_id: str, subject_id: str) -> tuple[bytes, bytes]:
    """One click of a device the held sessions do not include."""
    event = {
        "event_id": str(uuid.uuid4()),
        "org_id": org_id,
        "subject_id": subject_id,
        "device_id": PROBE,
        "seq": 1,
        "ts": now_micros(),
        "received_ts": None,
        "app": {"app_name": "code", "window_title": None, "url_host": None},
        "payload": {"type": "MouseClick", "button": "left", "x": 1, "y": 1, "double": False},
        "redactions": [],
        "consent_version": None,
    }
    return PROBE.encode(), encode_event(event)


def clean_tail(settings: Settings) -> Consumer:
    """A reader of capture.clean from its current end."""
    topic = settings.kafka.topic("capture.clean")
    consumer = Consumer(
        {**settings.kafka.client_config(), "group.id": "bench-unused", "enable.auto.commit": False}
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = []
    for p in parts:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends.append(TopicPartition(topic, p, high))
    consumer.assign(ends)
    return consumer


def events_in(port: int) -> int:
    """The worker's candor_worker_events_in_total (every input topic); -1 when unreadable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    return int(
        sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("candor_worker_events_in_total{")
        )
    )


def wait_sessions(
    port: int, want: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    """Block until the worker has taken in every event of the `want` devices and
    its gauge shows `want` open sessions (nothing left to read: the new worker's
    figures are recovery, not backlog); SystemExit if it stops, shows more
    sessions, or the time is up."""
    deadline = time.monotonic() + timeout_s
    while (opened := open_sessions(port)) != want or events_in(port) < want * SESSION_EVENTS:
        if proc.poll() is not None or time.monotonic() > deadline or opened > want:
            raise SystemExit(
                f"bench: the worker shows {opened} open sessions and {events_in(port)} events "
                f"in, wanted {want} and {want * SESSION_EVENTS}\n{log_tail(log)}"
            )
        time.sleep(0.2)


def one_run(base: Settings, sessions: int, timeout_s: float) -> Recovery:
    """One hold, kill and recovery on topics and a database of its own (dropped
    at the end). Blocks."""
    run_id = uuid.uuid4().hex[:8]
    settings = replace(
        base,
        kafka={"topic_prefix": f"bench-recovery-{run_id}."},
        clickhouse={"database": f"bench_recovery_{run_id}"},  # the workers' key store
        streams={"session_gap_s": SESSION_GAP_S},
    )
    create_topics(settings)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-recovery-") as home:
            # the workers and this process share the master key
            settings = replace(settings, home=Path(home))
            migrate(settings)
            org = "org-bench-recovery"
            subjects = [f"subj-bench-recovery-{i:04d}" for i in range(SUBJECTS)]
            now = now_micros()
            grant_many(
                settings,
                [grant(None, SCOPES, "bench", now, subject_id=s, org_id=org) for s in subjects],
                "bench",
            )
            produce(
                settings, session_events(sessions, subjects, org, settings.streams.grace_s, now)
            )
            app_id = f"{settings.kafka.topic_prefix}worker"
            logs = [Path(home) / "worker-1.log", Path(home) / "worker-2.log"]
            port = free_port()
            with logs[0].open("wb") as log:
                first = start_worker(settings, app_id, port, log)
                procs.append(first)
                say(f"hold: {sessions:,} devices produced; waiting for their open sessions")
                wait_sessions(port, sessions, first, logs[0], timeout_s)
                held = rss_mb(first.pid)
                say(f"hold: {sessions:,} open sessions, worker RSS {held:,.0f} MB; kill -9")
                first.send_signal(signal.SIGKILL)
                first.wait(30)
            tail = clean_tail(settings)
            port = free_port()
            with logs[1].open("wb") as log:
                started = time.monotonic()
                second = start_worker(settings, app_id, port, log)
                procs.append(second)
                produce(settings, [probe_event(org, subjects[0])])
                resumed = 0.0
                recovered = 0.0
                rss_recovered = 0.0
                deadline = started + timeout_s
                while not (resumed and recovered):
                    if second.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(
                            f"bench: no recovery (resumed {resumed:.1f} s, recovered "
                            f"{recovered:.1f} s, gauge {open_sessions(port)})\n{log_tail(logs[1])}"
                        )
                    for m in tail.consume(1000, timeout=0.2):
                        if m.error() is None and m.key() == PROBE.encode() and not resumed:
                            resumed = time.monotonic() - started
                            say(f"recovery: the probe's clean output after {resumed:.1f} s")
                    if not recovered:
                        opened = open_sessions(port)
                        if opened > sessions + 1:  # + 1: the probe's device, once folded
                            raise SystemExit(f"bench: {opened} open sessions after the restart")
                        if opened >= sessions:
                            recovered = time.monotonic() - started
                            rss_recovered = rss_mb(second.pid)
                            say(f"recovery: {opened:,} open sessions after {recovered:.1f} s")
                tail.close()
        return Recovery(sessions, held, recovered, resumed, rss_recovered)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        drop_topics(settings)
        admin = connect(settings, database="")
        for db in (settings.clickhouse.database, f"analyst_{settings.clickhouse.database}"):
            admin.command(f"DROP DATABASE IF EXISTS {db}")


HEADER = (
    f"{'run':>3} {'sessions':>9} {'RSS held':>9} {'recovered':>10} {'resumed':>8} {'RSS rec':>8}"
)


def row(label: str, r: Recovery) -> str:
    return (
        f"{label:>3} {r.sessions:>9,} {r.rss_held_mb:>7.0f}MB {r.recovered_s:>9.1f}s "
        f"{r.resumed_s:>7.1f}s {r.rss_recovered_mb:>6.0f}MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000, help="open sessions held")
    parser.add_argument("--runs", type=int, default=1, help="runs (default %(default)s)")
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds per phase (default %(default)s)"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_settings()
    print(HEADER, flush=True)
    runs = []
    for i in range(args.runs):
        runs.append(one_run(settings, args.sessions, args.timeout))
        print(row(str(i + 1), runs[-1]), flush=True)
    med = statistics.median
    print(
        row(
            "med",
            Recovery(
                args.sessions,
                med(r.rss_held_mb for r in runs),
                med(r.recovered_s for r in runs),
                med(r.resumed_s for r in runs),
                med(r.rss_recovered_mb for r in runs),
            ),
        )
    )
    print("target (issue 12): a restarted worker holding 100,000 sessions recovers in <= 60 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
