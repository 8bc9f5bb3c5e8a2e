"""Stream worker throughput and memory: one `candor worker` against two baselines.

    .venv/bin/python bench/streams.py [--events 200000] [--runs 3] [--people 400]
                                      [--sessions 10000] [--seed S] [--profile worker.prof]

Each run uses its own topic prefix (bench-streams-<random>.) on the Kafka of
the settings and its own ClickHouse database (the worker's key store), and
deletes both at the end:

1. workload: a fresh random simulator seed (printed; ``--seed`` replays one).
   ``producers.simulator.Simulator`` with ``--people`` people, backdated so
   that its first ``--events`` events end at about now, gives the throughput
   events: per device in seq order, the simulator's mix (mostly typed-text
   chunks, then screen frames, mouse paths, focus changes, scrolls, clicks,
   IDE edits, activity changes, commands). Consent with every scope is
   published for every simulated subject, then the events are produced to
   capture.events, pre-encoded with `schemas.codec.encode_event`, keyed by
   device_id (the capture SDK's producer settings, murmur2 partitioner);
2. decode-only: a bare confluent-kafka consumer reads them and only decodes
   them with `schemas.codec.decode_many`; events/s from the first message
   received to the last one decoded;
3. faust floor: bench/faust_floor.py (a subprocess, new consumer group), a
   faust app with the worker's app class and intake settings whose one agent
   only counts ``stream.take_events(5000, within=0.5)`` batches; events/s from
   its first batch to its last. It is the ceiling faust's per-record intake
   puts on the worker on this machine (``bench/faust_floor.py --stock`` gives
   plain faust's, without the worker's eager hand-over);
4. worker: a `candor worker` subprocess (new consumer group, session gap 2 h
   so that no session closes during the run) reads the same events through
   the whole chain (decode, dedup, consent, redaction, sessions, minutes,
   actions, every output acknowledged); events/s from the first to the last
   capture.clean record, by the records' broker timestamps (the producer's
   CreateTime), so group join and start-up are not counted;
5. memory: the worker's ``candor_worker_open_sessions`` gauge (set on every
   timer tick) is read once it is settled after the throughput phase (the
   simulated devices whose events span more than the grace period have an
   open session; the others' events are all still buffered), then
   ``--sessions`` more devices with 3 events each are produced; once the
   gauge reaches that reading + ``--sessions``, the worker's VmRSS is read
   from /proc (``--sessions-timeout`` bounds the wait).

Prints a line per run (progress on stderr): run, seed, decode ev/s (2),
floor ev/s (3), worker ev/s (4), w/dec and w/floor (worker ev/s over
decode-only and over the floor), RSS start (2 s after the worker started),
RSS after (the throughput phase), RSS sess (with the open sessions) and
sessions (the gauge then); then a ``med`` line with the medians over the
runs. With ``--profile`` the first run's worker runs under cProfile
(``python -m cProfile -o``) and its top costs are printed (profiling slows
the worker: that run is left out of the medians).

Targets (issue 4): >= 20,000 events/s, >= 0.3 of the decode-only baseline,
RSS <= 500 MB with 10,000 open sessions.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pstats
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from faust_floor import parse_result  # noqa: E402

from candor.consent_registry import grant_many  # noqa: E402
from candor.settings import Settings, child_env, load_settings  # noqa: E402
from candor.topics import create_topics  # noqa: E402
from privacy.consent import grant  # noqa: E402
from privacy.scope import Scope  # noqa: E402
from producers.envelope import Event  # noqa: E402
from producers.simulator import SimulatedDevice, Simulator, backdated_start  # noqa: E402
from schemas.codec import decode_many, encode_event  # noqa: E402
from schemas.errors import SchemaError  # noqa: E402
from sinks.connection import connect  # noqa: E402
from sinks.migrate import migrate  # noqa: E402

S = 1_000_000
SCOPES = [s.value for s in Scope]
# No session closes during a run: not by an event-time gap (the simulator's
# locked-screen spells last up to 40 min) nor by the worker's wall-clock timer.
SESSION_GAP_S = 7200
SESSION_EVENTS = 3  # per memory-phase device: the first two are folded, the last stays buffered
SIMULATED_S = 365 * 86_400.0  # more simulated time than any --events needs; cut at n events
FLOOR_SCRIPT = REPO / "bench" / "faust_floor.py"


def now_micros() -> int:
    return time.time_ns() // 1000


def say(line: str) -> None:
    """A progress line on stderr."""
    print(f"  [{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a child's log, for an error message (the log itself is
    deleted with the run's temporary home)."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(["--- " + path.name, *text[-lines:]])


@dataclass(frozen=True)
class Workload:
    """The throughput events of one run and who they belong to."""

    devices: list[SimulatedDevice]
    org_id: str
    records: list[tuple[bytes, bytes]]  # (device_id key, encoded CaptureEvent)
    first_ts: int  # event times (micros)
    last_ts: int


def first_events(sim: Simulator, n: int) -> list[Event]:
    """The simulator's first `n` events; raises SystemExit when it has fewer."""
    events = list(itertools.islice(sim.events(SIMULATED_S), n))
    if len(events) < n:
        raise SystemExit(f"bench: the simulator gave only {len(events)} of {n} events")
    return events


def simulated_workload(people: int, seed: int, n: int, now: int) -> Workload:
    """The first `n` events of `people` simulated people from `seed`, encoded,
    ending at or before `now` (the worker dead-letters event times more than
    5 min ahead of its clock)."""
    start = backdated_start(people, seed, n, now)
    sim = Simulator(people, seed, start)
    events = first_events(sim, n)
    ahead = events[-1]["ts"] - now
    if ahead > 0:  # backdated_start's pace is estimated from a sample: start earlier
        sim = Simulator(people, seed, start - ahead - S)
        events = first_events(sim, n)
    records = [(str(e["device_id"]).encode(), encode_event(e)) for e in events]
    return Workload(sim.devices, sim.org_id, records, events[0]["ts"], events[-1]["ts"])


def session_events(devices: int, subjects: list[str], org_id: str, grace_s: float,
                   end: int) -> list[tuple[bytes, bytes]]:
    """SESSION_EVENTS clicks for each of `devices` new devices (ids no simulated
    device has), the last ones at `end`, subjects taken in turn from `subjects`
    (which must have consent).

    The events of a device are grace + 10 s apart: the worker folds an event
    (and so opens the device's session) only once a later event of the same
    device moves its watermark (max ts - grace) past it; until then it is
    buffered and opens nothing."""
    step = int((grace_s + 10) * S)
    start = end - (SESSION_EVENTS - 1) * step
    out = []
    for seq in range(1, SESSION_EVENTS + 1):
        ts = start + (seq - 1) * step
        for d in range(devices):
            device = f"dev-bench-sessions-{d:06d}"
            event = {
                "event_id": str(uuid.uuid4()), "org_id": org_id,
                "subject_id": subjects[d % len(subjects)], "device_id": device, "seq": seq,
                "ts": ts + d, "received_ts": None,
                "app": {"app_name": "code", "window_title": "main.py - candor", "url_host": None},
                "payload": {"type": "MouseClick", "button": "left", "x": 640, "y": 400,
                            "double": False},
                "redactions": [], "consent_version": None,
            }
            out.append((device.encode(), encode_event(event)))
    return out


def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    """Produce `records` to capture.events and wait until all are acknowledged."""
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


def decode_only(settings: Settings, n: int) -> float:
    """Events/s of a bare consumer that only decodes, first message to last decoded.
    Raises SystemExit when it gets fewer than `n` within 300 s or one fails to decode."""
    consumer = _reader(settings, settings.kafka.topic("capture.events"))
    seen, failed, first = 0, 0, 0.0
    deadline = time.monotonic() + 300
    try:
        while seen < n and time.monotonic() < deadline:
            msgs = consumer.consume(5000, timeout=1.0)
            values = [v for m in msgs if m.error() is None and (v := m.value()) is not None]
            if values and not first:
                first = time.perf_counter()
            failed += sum(isinstance(d, SchemaError) for d in decode_many(values))
            seen += len(values)
        elapsed = time.perf_counter() - first
    finally:
        consumer.close()
    if seen < n or failed:
        raise SystemExit(f"bench: decode-only read {seen} of {n} events, {failed} undecodable")
    return seen / elapsed


def faust_floor(settings: Settings, n: int, home: Path, timeout_s: float = 300) -> float:
    """Events/s of bench/faust_floor.py on capture.events (a subprocess, new
    consumer group). Blocks; raises SystemExit when it fails or times out."""
    topic = settings.kafka.topic("capture.events")
    args = [sys.executable, str(FLOOR_SCRIPT), "--topic", topic, "--events", str(n),
            "--bootstrap", settings.kafka.bootstrap,
            "--partitions", str(settings.kafka.partitions),
            "--app-id", f"{settings.kafka.topic_prefix}faust-floor",
            "--datadir", str(home / "faust-floor")]
    log = home / "faust-floor.log"
    with log.open("wb") as err:
        try:
            done = subprocess.run(args, cwd=REPO, stdout=subprocess.PIPE, stderr=err,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:  # run() has killed it
            raise SystemExit(f"bench: the faust floor did not get {n} events in {timeout_s:.0f}"
                             f" s\n{log_tail(log)}") from None
    result = parse_result(done.stdout.decode(errors="replace"))
    if result is not None and done.returncode == 0:
        if result["rate"] <= 0:
            raise SystemExit(f"bench: the faust floor got all {n} events in its first batch "
                             f"(no rate to measure): use more --events")
        return float(result["rate"])
    raise SystemExit(f"bench: the faust floor exited {done.returncode} without a result\n"
                     f"{log_tail(log)}")


@dataclass
class WorkerRun:
    rate: float
    rss_start_mb: float
    rss_after_mb: float
    rss_sessions_mb: float
    open_after_throughput: int
    open_sessions: int


def rss_mb(pid: int) -> float:
    """VmRSS of a process, from /proc (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_sessions(port: int) -> int:
    """The worker's candor_worker_open_sessions gauge; -1 when unreadable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    for line in text.splitlines():
        if line.startswith("candor_worker_open_sessions "):
            return int(float(line.split()[1]))
    return -1


def settled_open_sessions(port: int, proc: subprocess.Popen[bytes], tick_s: float,
                          timeout_s: float) -> int:
    """The gauge once two readings a timer tick apart agree, the first a full tick
    after the call (so it was set after the last batch was folded). Blocks;
    raises SystemExit when the worker stops or it does not settle in time."""
    deadline = time.monotonic() + timeout_s
    previous = -2
    while True:
        time.sleep(tick_s + 1)
        current = open_sessions(port)
        if current >= 0 and current == previous:
            return current
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: candor_worker_open_sessions did not settle after the "
                             f"throughput phase (last {previous}, {current})")
        previous = current


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def run_worker(settings: Settings, work: Workload, sessions: int, sessions_timeout_s: float,
               profile: Path | None) -> WorkerRun:
    """Throughput and memory phases of one `candor worker` subprocess (stopped at
    the end). Raises SystemExit when it stops, stalls or never reports the sessions."""
    n = len(work.records)
    port = free_port()
    app_id = f"{settings.kafka.topic_prefix}worker"
    cli = ["-m", "candor.cli", "worker", "--app-id", app_id, "--metrics-port", str(port),
           "--loglevel", "warning"]
    args = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), *cli]
    log_path = settings.home / "worker.log"
    env = {**child_env(settings, dict(os.environ)), "CANDOR_LOG_LEVEL": "WARNING"}
    log = log_path.open("wb")
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    reader = _reader(settings, settings.kafka.topic("capture.clean"))
    state = {"n": 0}
    try:
        time.sleep(2)
        rss_start = rss_mb(proc.pid)
        deadline = time.monotonic() + 900
        while state["n"] < n:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench: worker stopped/stalled at {state['n']} of {n}\n"
                                 f"{log_tail(log_path)}")
            count_clean(reader, state)
        rate = state["n"] / max(1e-3, (state["last"] - state["first"]) / 1000)
        rss_after = rss_mb(proc.pid)
        tick_s = settings.streams.timer_interval_s
        base = settled_open_sessions(port, proc, tick_s, 120)
        say(f"worker: {state['n']:,} clean events at {rate:,.0f} ev/s; {base:,} of "
            f"{len(work.devices)} simulated devices have an open session (the others' events "
            f"all fit in the {settings.streams.grace_s:.0f} s grace)")
        subjects = [d.subject_id for d in work.devices]
        produce(settings, session_events(sessions, subjects, work.org_id,
                                         settings.streams.grace_s, now_micros()))
        want = base + sessions
        say(f"memory: {sessions:,} more devices produced; waiting for {want:,} open sessions")
        deadline = time.monotonic() + sessions_timeout_s
        while (opened := open_sessions(port)) < want:
            if proc.poll() is not None:
                raise SystemExit(f"bench: the worker stopped at {opened} open sessions\n"
                                 f"{log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"bench: candor_worker_open_sessions is {opened} after "
                    f"{sessions_timeout_s:.0f} s, wanted {want} ({base} after the throughput "
                    f"phase + {sessions} new devices); the worker's timer should set it every "
                    f"{tick_s:g} s\n{log_tail(log_path)}")
            time.sleep(1)
        return WorkerRun(rate, rss_start, rss_after, rss_mb(proc.pid), base, opened)
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


@dataclass
class Row:
    """The figures of one run."""

    seed: int
    decode_rate: float
    floor_rate: float
    worker: WorkerRun


def one_run(base: Settings, n: int, people: int, seed: int, sessions: int,
            sessions_timeout_s: float, profile: Path | None) -> Row:
    """One run on its own topics and database (dropped at the end). Blocks."""
    settings = base.model_copy(deep=True)
    run_id = uuid.uuid4().hex[:8]
    settings.kafka.topic_prefix = f"bench-streams-{run_id}."
    settings.clickhouse.database = f"bench_streams_{run_id}"  # the worker's key store
    settings.streams.session_gap_s = SESSION_GAP_S
    create_topics(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-streams-") as home:
            settings.home = Path(home)  # the worker and this process share the master key
            migrate(settings)
            now = now_micros()
            work = simulated_workload(people, seed, n, now)
            say(f"seed {seed}: {n:,} events of {people} people, event times from "
                f"{(now - work.first_ts) / S:,.0f} s to {(now - work.last_ts) / S:,.0f} s ago")
            grant_many(settings, [grant(None, SCOPES, "bench", now, subject_id=d.subject_id,
                                        org_id=work.org_id) for d in work.devices], "bench")
            produce(settings, work.records)
            decode_rate = decode_only(settings, n)
            say(f"decode-only: {decode_rate:,.0f} ev/s")
            floor_rate = faust_floor(settings, n, Path(home))
            say(f"faust floor: {floor_rate:,.0f} ev/s")
            worker = run_worker(settings, work, sessions, sessions_timeout_s, profile)
        return Row(seed, decode_rate, floor_rate, worker)
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


HEADER = (f"{'run':>3} {'seed':>10} {'decode ev/s':>12} {'floor ev/s':>11} {'worker ev/s':>12} "
          f"{'w/dec':>6} {'w/floor':>7} {'RSS start':>10} {'RSS after':>10} {'RSS sess':>9} "
          f"{'sessions':>9}")


def format_row(label: str, seed: str, rates: tuple[float, float, float],
               ratios: tuple[float, float], rss: tuple[float, float, float],
               sessions: str) -> str:
    """One line of the table: (decode, floor, worker) ev/s, (worker/decode,
    worker/floor), RSS (start, after, with sessions) MB."""
    return (f"{label:>3} {seed:>10} {rates[0]:>12,.0f} {rates[1]:>11,.0f} {rates[2]:>12,.0f} "
            f"{ratios[0]:>6.2f} {ratios[1]:>7.2f} {rss[0]:>8.0f}MB {rss[1]:>8.0f}MB "
            f"{rss[2]:>7.0f}MB {sessions:>9}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[5:]))
    parser.add_argument("--events", type=int, default=200_000,
                        help="throughput events per run: the simulator's first N (default "
                             "%(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default %(default)s)")
    parser.add_argument("--people", type=int, default=400,
                        help="simulated people, one device each (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="simulator seed of every run (default: a fresh random one per run)")
    parser.add_argument("--sessions", type=int, default=10_000,
                        help="extra devices (open sessions) for the memory figure "
                             "(default %(default)s)")
    parser.add_argument("--sessions-timeout", type=float, default=300,
                        help="seconds to wait for the worker to report those sessions "
                             "(default %(default)s)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the first run's worker into this file (that run is "
                             "left out of the medians)")
    parser.add_argument("--top", type=int, default=30,
                        help="profile lines to print (default %(default)s)")
    args = parser.parse_args()
    # a SIGTERM (timeout, Ctrl-C from a runner) still stops the worker and drops the topics
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_settings()
    print(HEADER, flush=True)
    rows: list[Row] = []
    for i in range(args.runs):
        profile = args.profile if i == 0 else None
        seed = args.seed if args.seed is not None else random.randrange(1, 10**9)
        row = one_run(settings, args.events, args.people, seed, args.sessions,
                      args.sessions_timeout, profile)
        rows.append(row)
        w = row.worker
        print(format_row(str(i + 1), str(seed), (row.decode_rate, row.floor_rate, w.rate),
                         (w.rate / row.decode_rate, w.rate / row.floor_rate),
                         (w.rss_start_mb, w.rss_after_mb, w.rss_sessions_mb),
                         f"{w.open_sessions:,}") + (" (profiled)" if profile else ""),
              flush=True)
    timed = rows[1:] if args.profile else rows
    if timed:
        med = statistics.median
        print(format_row("med", "-", (med(r.decode_rate for r in timed),
                                      med(r.floor_rate for r in timed),
                                      med(r.worker.rate for r in timed)),
                         (med(r.worker.rate / r.decode_rate for r in timed),
                          med(r.worker.rate / r.floor_rate for r in timed)),
                         (med(r.worker.rss_start_mb for r in timed),
                          med(r.worker.rss_after_mb for r in timed),
                          med(r.worker.rss_sessions_mb for r in timed)),
                         f"{med(r.worker.open_sessions for r in timed):,.0f}"))
    else:
        print("med: none (the only run was profiled)")
    print("targets: worker >= 20,000 ev/s, w/dec >= 0.30, RSS <= 500 MB at 10,000 open sessions")
    floor = statistics.median(r.floor_rate for r in rows)
    if floor < 20_000:
        print(f"note: the faust floor ({floor:,.0f} ev/s) is below the 20,000 ev/s target: "
              f"no worker on faust's per-record intake reaches it on this machine")
    if args.profile:
        print_profile(args.profile, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
