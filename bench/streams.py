"""Stream worker throughput and memory: one `candor worker` against a decode-only baseline.

    .venv/bin/python bench/streams.py [--events 200000] [--runs 3] [--sessions 10000]
                                      [--profile worker.prof]

Each run uses its own topic prefix (bench-streams-<random>.) on the Kafka of
the settings, and deletes its topics at the end:

1. consent (every scope) is published for the simulated subjects, then
   ``--events`` pre-encoded capture events (400 devices, a realistic mix of
   keys, typing, mouse, scrolls, focus changes and commands, event times over
   the last hour, in seq order per device) are produced to capture.events;
2. baseline: a bare confluent-kafka consumer reads them and only decodes them
   with `schemas.codec.decode_many`; events/s from the first message received
   to the last one decoded;
3. worker: a `candor worker` subprocess (new consumer group) reads the same
   events through the whole chain (decode, dedup, consent, redaction,
   sessions, minutes, actions, every output acknowledged); events/s from the
   first to the last capture.clean record, by the records' broker timestamps
   (the producer's CreateTime), so group join and start-up are not counted;
4. memory: ``--sessions`` more devices (a few events each, session gap 2 h)
   are produced; once the worker reports that many open sessions
   (``candor_worker_open_sessions``) its VmRSS is read from /proc.

Prints a table per run and the medians over the runs. With ``--profile`` the
first run's worker runs under cProfile (``python -m cProfile -o``) and its
top costs are printed (profiling slows the worker: that run's throughput is
not comparable).

Targets (issue 4): >= 20,000 events/s, >= 0.3 of the decode-only baseline,
RSS <= 500 MB with 10,000 open sessions.
"""

from __future__ import annotations

import argparse
import os
import pstats
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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from candor.consent_registry import grant_many  # noqa: E402
from candor.settings import Settings, load_settings  # noqa: E402
from candor.topics import create_topics  # noqa: E402
from privacy.consent import grant  # noqa: E402
from schemas.codec import decode_many, encode_event  # noqa: E402
from sinks.connection import connect  # noqa: E402
from sinks.migrate import migrate  # noqa: E402

S = 1_000_000
DEVICES = 400
SUBJECTS = 200
SCOPES = ["activity_metadata", "keystroke_content", "screen_frames", "ide_content",
          "terminal_content", "training_use", "analytics"]


def now_micros() -> int:
    return time.time_ns() // 1000


def payload(i: int) -> dict[str, Any]:
    """The i-th payload of a realistic mix: mostly keys and mouse, some of the rest."""
    k = i % 20
    if k < 6:
        return {"type": "KeyInput", "key": "a", "text": None, "modifiers": [],
                "is_secure_field": False, "count": 1}
    if k < 8:
        return {"type": "KeyInput", "key": None, "text": "git commit -m 'fix the sink'",
                "modifiers": [], "is_secure_field": False, "count": 27}
    if k == 8:
        return {"type": "KeyInput", "key": "p", "text": None, "modifiers": ["ctrl", "shift"],
                "is_secure_field": False, "count": 1}
    if k < 13:
        return {"type": "MouseMove", "path": [{"dt_ms": 8 * j, "x": 100 + 7 * j, "y": 50 + 3 * j}
                                              for j in range(8)]}
    if k < 15:
        return {"type": "MouseClick", "button": "left", "x": 640, "y": 400, "double": False}
    if k < 17:
        return {"type": "Scroll", "dx": 0, "dy": -120}
    if k == 17:
        return {"type": "WindowFocus", "previous_app_name": "firefox"}
    if k == 18:
        return {"type": "TerminalCommand", "command": "pytest -q tests/unit", "exit_code": 0,
                "cwd_hash": "c" * 16}
    return {"type": "IdeEdit", "path_hash": "p" * 16, "language": "python",
            "chars_inserted": 12, "chars_deleted": 0, "diff": "+    return total\n"}


def event(device: int, subject: int, seq: int, ts: int, i: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()), "org_id": "org-bench", "subject_id": f"subj-{subject}",
        "device_id": f"dev-{device}", "seq": seq, "ts": ts, "received_ts": ts,
        "app": {"app_name": "code" if i % 3 else "firefox", "window_title": "main.py - candor",
                "url_host": None},
        "payload": payload(i), "redactions": [], "consent_version": None,
    }


def throughput_events(n: int, start: int) -> list[tuple[bytes, bytes]]:
    """n encoded events of DEVICES devices, event times spread over the hour after start."""
    step = max(1, 3600 * S // n)
    return [(f"dev-{i % DEVICES}".encode(),
             encode_event(event(i % DEVICES, i % SUBJECTS, i // DEVICES, start + i * step, i)))
            for i in range(n)]


def session_events(devices: int, per_device: int, start: int) -> list[tuple[bytes, bytes]]:
    """`per_device` events 40 s apart for each of `devices` new devices (ids above the
    throughput ones). 40 s > the 30 s grace: the later events move the device's
    watermark past the first, so its session opens (buffered events open none)."""
    out = []
    for j in range(per_device):
        for d in range(devices):
            dev = 100_000 + d
            out.append((f"dev-{dev}".encode(),
                        encode_event(event(dev, d % SUBJECTS, j, start + j * 40 * S + d, j))))
    return out


def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({**settings.kafka.client_config(), "linger.ms": 20, "acks": "all",
                         "enable.idempotence": True, "compression.type": "zstd",
                         "queue.buffering.max.messages": 2_000_000,
                         "partitioner": "murmur2_random"})
    topic = settings.kafka.topic("capture.events")
    for key, value in records:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("bench: not every input was acknowledged")


def _reader(settings: Settings, topic: str) -> Consumer:
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "bench-unused",
                         "enable.auto.commit": False, "fetch.max.bytes": 64 * 1024 * 1024})
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, -2) for p in parts])
    return consumer


def baseline(settings: Settings, n: int) -> float:
    """Events/s of a bare consumer that only decodes, first message to last decoded."""
    consumer = _reader(settings, settings.kafka.topic("capture.events"))
    seen, first = 0, 0.0
    deadline = time.monotonic() + 300
    while seen < n and time.monotonic() < deadline:
        msgs = consumer.consume(5000, timeout=1.0)
        values = [m.value() for m in msgs if m.error() is None]
        if values and not first:
            first = time.perf_counter()
        decode_many(values)
        seen += len(values)
    elapsed = time.perf_counter() - first
    consumer.close()
    return seen / elapsed


@dataclass
class WorkerRun:
    rate: float
    rss_start_mb: float
    rss_after_mb: float
    rss_sessions_mb: float
    open_sessions: int


def rss_mb(pid: int) -> float:
    """VmRSS of a process, from /proc (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_sessions(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    for line in text.splitlines():
        if line.startswith("candor_worker_open_sessions "):
            return int(float(line.split()[1]))
    return -1


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(settings: Settings, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "CANDOR_HOME": str(home),
        "CANDOR_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "CANDOR_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "CANDOR_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        "CANDOR_CLICKHOUSE_URL": settings.clickhouse.url,
        "CANDOR_CLICKHOUSE__DATABASE": settings.clickhouse.database,
        "CANDOR_STREAMS__SESSION_GAP_S": "7200",
        "CANDOR_LOG_LEVEL": "WARNING",
    })
    return env


def count_clean(consumer: Consumer, state: dict[str, int]) -> None:
    """Read what capture.clean holds now; track count and first/last CreateTime (ms)."""
    for m in consumer.consume(10_000, timeout=0.5):
        err = m.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                raise SystemExit(f"bench: read error {err}")
            continue
        ts = m.timestamp()[1]
        state["n"] += 1
        state["first"] = min(state.get("first", ts), ts)
        state["last"] = max(state.get("last", ts), ts)


def run_worker(settings: Settings, n: int, sessions: int, home: Path,
               profile: Path | None) -> WorkerRun:
    port = free_port()
    app_id = f"{settings.kafka.topic_prefix}worker"
    cli = ["-m", "candor.cli", "worker", "--app-id", app_id, "--metrics-port", str(port),
           "--loglevel", "warning"]
    args = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), *cli]
    log = (home / "worker.log").open("wb")
    proc = subprocess.Popen(args, cwd=REPO, env=worker_env(settings, home), stdout=log,
                            stderr=subprocess.STDOUT)
    reader = _reader(settings, settings.kafka.topic("capture.clean"))
    state = {"n": 0}
    try:
        time.sleep(2)
        rss_start = rss_mb(proc.pid)
        deadline = time.monotonic() + 900
        while state["n"] < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: worker stopped/stalled at {state['n']} of {n}; "
                                 f"log {home / 'worker.log'}")
            count_clean(reader, state)
        rate = state["n"] / max(1e-3, (state["last"] - state["first"]) / 1000)
        rss_after = rss_mb(proc.pid)
        # after every throughput event in event time: older would be late (behind the
        # watermark) and open no session
        produce(settings, session_events(sessions, 3, now_micros() - 100 * S))
        opened = -1
        deadline = time.monotonic() + 600
        while (opened := open_sessions(port)) < sessions + DEVICES:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: {opened} open sessions, wanted {sessions + DEVICES}")
            print(f"  ... {opened} open sessions", file=sys.stderr, flush=True)
            time.sleep(2)
        return WorkerRun(rate, rss_start, rss_after, rss_mb(proc.pid), opened)
    finally:
        reader.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def drop_topics(settings: Settings) -> None:
    admin = AdminClient(settings.kafka.client_config())
    prefix = settings.kafka.topic_prefix
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            try:
                future.result(60)
            except Exception as err:  # a leftover topic is not worth failing the bench
                print(f"  (could not delete a topic: {err})")


def one_run(base: Settings, n: int, sessions: int, profile: Path | None) -> tuple[float, WorkerRun]:
    settings = base.model_copy(deep=True)
    run_id = uuid.uuid4().hex[:8]
    settings.kafka.topic_prefix = f"bench-streams-{run_id}."
    settings.clickhouse.database = f"bench_streams_{run_id}"  # the worker's key store
    create_topics(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-streams-") as home:
            settings.home = Path(home)  # the worker and this process share the master key
            migrate(settings)
            now = now_micros()
            subjects = [f"subj-{s}" for s in range(SUBJECTS)]
            grant_many(settings, [grant(None, SCOPES, "bench", now, subject_id=s,
                                        org_id="org-bench") for s in subjects], "bench")
            produce(settings, throughput_events(n, now - 3700 * S))
            base_rate = baseline(settings, n)
            worker = run_worker(settings, n, sessions, Path(home), profile)
        return base_rate, worker
    finally:
        drop_topics(settings)
        admin = connect(settings, database="")
        for db in (settings.clickhouse.database, f"analyst_{settings.clickhouse.database}"):
            admin.command(f"DROP DATABASE IF EXISTS {db}")


def print_profile(path: Path, top: int) -> None:
    print(f"\ncProfile of the worker ({path}), top {top} by cumulative and by own time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="throughput events per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=10_000,
                        help="extra devices (open sessions) for the memory figure")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the first run's worker into this file")
    parser.add_argument("--top", type=int, default=30, help="profile lines to print")
    args = parser.parse_args()
    # a SIGTERM (timeout, Ctrl-C from a runner) still stops the worker and drops the topics
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_settings()
    print(f"{'run':>3} {'baseline ev/s':>14} {'worker ev/s':>12} {'ratio':>6} "
          f"{'RSS start':>10} {'RSS after':>10} {'RSS sess':>9} {'sessions':>9}")
    rows: list[tuple[float, WorkerRun]] = []
    for i in range(args.runs):
        profile = args.profile if i == 0 else None
        base_rate, w = one_run(settings, args.events, args.sessions, profile)
        rows.append((base_rate, w))
        tag = " (profiled)" if profile else ""
        print(f"{i + 1:>3} {base_rate:>14,.0f} {w.rate:>12,.0f} {w.rate / base_rate:>6.2f} "
              f"{w.rss_start_mb:>8.0f}MB {w.rss_after_mb:>8.0f}MB {w.rss_sessions_mb:>7.0f}MB "
              f"{w.open_sessions:>9,}{tag}", flush=True)
    timed = rows[1:] if args.profile and len(rows) > 1 else rows
    med = statistics.median
    print(f"med {med(b for b, _ in timed):>14,.0f} {med(w.rate for _, w in timed):>12,.0f} "
          f"{med(w.rate / b for b, w in timed):>6.2f} "
          f"{med(w.rss_start_mb for _, w in timed):>8.0f}MB "
          f"{med(w.rss_after_mb for _, w in timed):>8.0f}MB "
          f"{med(w.rss_sessions_mb for _, w in timed):>7.0f}MB")
    print("targets: worker >= 20,000 ev/s, ratio >= 0.30, RSS <= 500 MB at 10,000 open sessions")
    if args.profile:
        print_profile(args.profile, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
