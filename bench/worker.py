"""Stream worker throughput and memory: one `candor worker` on single-event and on batch records.

    .venv/bin/python bench/worker.py [--events 200000] [--runs 3] [--people 400]
                                      [--input both|single|batch] [--device-rate 15]
                                      [--sessions 10000] [--no-floor] [--seed S]
                                      [--profile worker.prof]

Each run draws one workload and runs it once per input format (``--input``),
each time on its own topic prefix (bench-streams-<random>.) on the Kafka of
the settings and its own ClickHouse database (the worker's key store), both
deleted at the end:

1. workload: a fresh random simulator seed (printed; ``--seed`` replays one).
   ``producers.simulator.simulator.Simulator`` with ``--people`` people, backdated so
   that its first ``--events`` events end at about now: per device in seq
   order, the simulator's mix (mostly typed-text chunks, then screen frames,
   mouse paths, focus changes, scrolls, clicks, IDE edits, activity changes,
   commands). Its people capture 2-3 events per active device-second; the
   event times are compressed (towards the last one) so that an active device
   captures about ``--device-rate`` events/s (default 15; 0 keeps them).
   Consent with every scope is published for every simulated subject, then
   the records are produced to capture.events keyed by device_id (the capture
   SDK's producer settings, murmur2 partitioner):
   - ``single``: one CaptureEvent record per event (`schemas.codec.encode_event`);
   - ``batch``: the DeviceBatch records the capture SDK itself sends for these
     events with its default linger and limits, on the event-time clock
     (`bench/device_batches.py`); the batch-size distribution is printed;
2. decode-only: a bare confluent-kafka consumer reads them and only decodes
   them (`schemas.codec.decode_many`, or `schemas.batch.decode_capture` per
   batch); events/s from the first message received to the last one decoded;
   for single-event records also with stock fastavro instead of Candor's
   decoder (bench/yardstick.py): the machine's yardstick (after one untimed
   read of the records, as the first read is slower);
3. faust floor (single-event records only; ``--no-floor`` skips it):
   bench/faust_floor.py (a subprocess, new consumer group), a faust app with
   the worker's app class and intake settings whose one agent only counts
   ``stream.take_events(5000, within=0.5)`` batches; events/s from its first
   batch to its last: the ceiling faust's per-record intake puts on the worker;
4. worker: a `candor worker` subprocess (new consumer group, session gap 2 h
   so that no session closes during the run, topics of its own under
   ``<prefix>worker.``) is started on an empty capture.events; once the clean
   output of one warm-up event shows it running, the same records are
   produced and it reads them through the whole chain (decode, dedup,
   consent, redaction, sessions, minutes, actions, every output
   acknowledged); events/s from the start of that produce to the last
   capture.clean record (one CleanBatch per input record, its events
   counted from its array header) by its broker timestamp (the worker's
   CreateTime), so group join and start-up are not counted, and neither
   input format loses its first agent batch from the clock (a batch of 5000
   DeviceBatch records holds ~30,000 events);
5. memory (skipped with ``--sessions 0``): the worker's
   ``candor_worker_open_sessions`` gauge is read once it is settled after the
   throughput phase, then ``--sessions`` more devices with 3 events each are
   produced; once the gauge reaches that reading + ``--sessions``, the
   worker's VmRSS is read from /proc (``--sessions-timeout`` bounds the wait).

Prints a line per run and input (progress on stderr): run, input, seed,
ev/rec (events per record), decode ev/s (2), floor ev/s (3), worker ev/s
(4), w/dec (worker over the decode-only consumer of the same input), w/dec1
(worker over the stock-fastavro decode-only consumer of single-event records
in the same run: the machine's yardstick; the ratio to Candor's decoder of
the same records is printed below the table), RSS start (2 s after the worker started), RSS
after (the throughput phase), RSS sess (with the open sessions) and sessions
(the gauge then); then ``med`` lines with the medians over the runs. With
``--profile`` the first run's workers run under cProfile (``python -m
cProfile -o``; the file holds the last input's) and its top costs are printed
(profiling slows the worker: that run is left out of the medians).

Targets (issue 12): on batches, w/dec1 >= 0.5; RSS <= 500 MB at 100,000
open sessions.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pstats
import random
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
from typing import IO

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from device_batches import active_rate, at_device_rate, describe_sizes, sdk_batches
from environment import REPO, free_port
from faust_floor import parse_result
from yardstick import stock_decoder

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many
from backends.kafka.topics import create_topics
from candor.settings import Settings, child_env, load_settings, replace
from privacy.consent import grant
from privacy.scope import Scope
from producers.sdk.envelope import Event
from producers.simulator.simulator import SimulatedDevice, Simulator, backdated_start
from schemas.batch import decode_capture
from schemas.codec import HEADER_SIZE, decode_many, default_codec, encode_event
from schemas.errors import SchemaError
from sinks.migrate import migrate

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
    events: list[Event]  # in event-time order
    first_ts: int  # event times (micros)
    last_ts: int
    simulated_rate: float  # events/s per active device, as simulated
    device_rate: float  # the same after time compression

    def records(self, kind: str) -> list[tuple[bytes, bytes, int]]:
        """(device_id key, value, events in it): one CaptureEvent record per event
        (``single``) or the capture SDK's DeviceBatch records (``batch``)."""
        if kind == "single":
            return [(str(e["device_id"]).encode(), encode_event(e), 1) for e in self.events]
        return [(r.key, r.value, r.events) for r in sdk_batches(self.events)]


def first_events(sim: Simulator, n: int) -> list[Event]:
    """The simulator's first `n` events; raises SystemExit when it has fewer."""
    events = list(itertools.islice(sim.events(SIMULATED_S), n))
    if len(events) < n:
        raise SystemExit(f"bench: the simulator gave only {len(events)} of {n} events")
    return events


def simulated_workload(people: int, seed: int, n: int, now: int, device_rate: float) -> Workload:
    """The first `n` events of `people` simulated people from `seed`, ending at or
    before `now` (the worker dead-letters event times more than 5 min ahead of
    its clock), their event times compressed towards the last one so that an
    active device captures about `device_rate` events/s (0: as simulated)."""
    start = backdated_start(people, seed, n, now)
    sim = Simulator(people, seed, start)
    events = first_events(sim, n)
    ahead = events[-1]["ts"] - now
    if ahead > 0:  # backdated_start's pace is estimated from a sample: start earlier
        sim = Simulator(people, seed, start - ahead - S)
        events = first_events(sim, n)
    simulated = active_rate(events)
    if device_rate > 0:
        events, _factor = at_device_rate(events, device_rate)
    return Workload(
        sim.devices,
        sim.org_id,
        events,
        events[0]["ts"],
        events[-1]["ts"],
        simulated,
        active_rate(events),
    )


def session_events(
    devices: int, subjects: list[str], org_id: str, grace_s: float, end: int
) -> list[tuple[bytes, bytes]]:
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
                "event_id": str(uuid.uuid4()),
                "org_id": org_id,
                "subject_id": subjects[d % len(subjects)],
                "device_id": device,
                "seq": seq,
                "ts": ts + d,
                "received_ts": None,
                "app": {"app_name": "code", "window_title": "main.py - candor", "url_host": None},
                "payload": {
                    "type": "MouseClick",
                    "button": "left",
                    "x": 640,
                    "y": 400,
                    "double": False,
                },
                "redactions": [],
                "consent_version": None,
            }
            out.append((device.encode(), encode_event(event)))
    return out


def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    """Produce `records` (key, value) to capture.events and wait until all are
    acknowledged."""
    producer = Producer(
        {
            **settings.kafka.client_config(),
            "linger.ms": 20,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "zstd",
            "queue.buffering.max.messages": 2_000_000,
            "partitioner": "murmur2_random",
        }
    )
    topic = settings.kafka.topic("capture.events")
    for key, value in records:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    if producer.flush(120):
        raise SystemExit("bench: not every input was acknowledged")


def _reader(settings: Settings, topic: str) -> Consumer:
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": "bench-unused",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, -2) for p in parts])
    return consumer


def decode_only(settings: Settings, n: int, kind: str = "single") -> float:
    """Events/s of a bare consumer that only decodes, first message to last decoded:
    `schemas.codec.decode_many` for single-event records, `decode_capture` per
    record for batches, stock fastavro (`yardstick.stock_decoder`) for
    single-event records with `kind` "stock". Raises SystemExit when it gets
    fewer than `n` events within 300 s or one fails to decode."""
    stock = stock_decoder()
    consumer = _reader(settings, settings.kafka.topic("capture.events"))
    seen, failed, first = 0, 0, 0.0
    deadline = time.monotonic() + 300
    try:
        while seen < n and time.monotonic() < deadline:
            msgs = consumer.consume(5000, timeout=1.0)
            values = [v for m in msgs if m.error() is None and (v := m.value()) is not None]
            if values and not first:
                first = time.perf_counter()
            if kind == "single":
                failed += sum(isinstance(d, SchemaError) for d in decode_many(values))
                seen += len(values)
                continue
            if kind == "stock":
                for value in values:
                    try:
                        stock(value)
                    except (ValueError, EOFError, KeyError, TypeError):
                        failed += 1
                seen += len(values)
                continue
            for value in values:
                try:
                    batch = decode_capture(value)
                except SchemaError:
                    failed += 1
                    continue
                failed += len(batch.rejected)
                seen += batch.size
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
    args = [
        sys.executable,
        str(FLOOR_SCRIPT),
        "--topic",
        topic,
        "--events",
        str(n),
        "--bootstrap",
        settings.kafka.bootstrap,
        "--partitions",
        str(settings.kafka.partitions),
        "--app-id",
        f"{settings.kafka.topic_prefix}faust-floor",
        "--datadir",
        str(home / "faust-floor"),
    ]
    log = home / "faust-floor.log"
    with log.open("wb") as err:
        try:
            done = subprocess.run(
                args, cwd=REPO, stdout=subprocess.PIPE, stderr=err, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:  # run() has killed it
            raise SystemExit(
                f"bench: the faust floor did not get {n} events in {timeout_s:.0f}"
                f" s\n{log_tail(log)}"
            ) from None
    result = parse_result(done.stdout.decode(errors="replace"))
    if result is not None and done.returncode == 0:
        if result["rate"] <= 0:
            raise SystemExit(
                f"bench: the faust floor got all {n} events in its first batch "
                f"(no rate to measure): use more --events"
            )
        return float(result["rate"])
    raise SystemExit(
        f"bench: the faust floor exited {done.returncode} without a result\n{log_tail(log)}"
    )


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


def settled_open_sessions(
    port: int, proc: subprocess.Popen[bytes], tick_s: float, timeout_s: float
) -> int:
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
            raise SystemExit(
                f"bench: candor_worker_open_sessions did not settle after the "
                f"throughput phase (last {previous}, {current})"
            )
        previous = current


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """An Avro (zigzag varint) long at ``pos``: (value, next position)."""
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def clean_record_events(value: bytes) -> int:
    """How many events a capture.clean record holds, without decoding its events:
    a CleanBatch's array count read past its header fields (batch_id, org,
    subject, device, first/last seq, key_id, content), 1 for a CaptureEvent."""
    if default_codec().name_of(value) != "CleanBatch":
        return 1
    pos = HEADER_SIZE
    for _ in range(4):  # the strings
        size, pos = _long(value, pos)
        pos += size
    for _ in range(2):  # the seqs
        _, pos = _long(value, pos)
    for _ in range(2):  # key_id, content: [null, string|bytes]
        branch, pos = _long(value, pos)
        if branch:
            size, pos = _long(value, pos)
            pos += size
    count, _ = _long(value, pos)
    return abs(count)


def count_clean(consumer: Consumer, state: dict[str, int]) -> None:
    """Read what capture.clean holds now; track its events and first/last CreateTime (ms)."""
    for m in consumer.consume(10_000, timeout=0.5):
        err = m.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                raise SystemExit(f"bench: read error {err}")
            continue
        ts = m.timestamp()[1]
        state["n"] += clean_record_events(m.value() or b"")
        state["first"] = min(state.get("first", ts), ts)
        state["last"] = max(state.get("last", ts), ts)


def warmup_event(work: Workload, now: int) -> tuple[bytes, bytes]:
    """One click of a device no simulated person has, for a simulated subject
    (who has consent): the worker's first input, so it is running when timed."""
    event = {
        "event_id": str(uuid.uuid4()),
        "org_id": work.org_id,
        "subject_id": work.devices[0].subject_id,
        "device_id": "dev-bench-warmup",
        "seq": 1,
        "ts": now,
        "received_ts": None,
        "app": {"app_name": "code", "window_title": None, "url_host": None},
        "payload": {"type": "MouseClick", "button": "left", "x": 1, "y": 1, "double": False},
        "redactions": [],
        "consent_version": None,
    }
    return b"dev-bench-warmup", encode_event(event)


def start_worker(
    settings: Settings, app_id: str, port: int, log: IO[bytes], profile: Path | None = None
) -> subprocess.Popen[bytes]:
    """A `candor worker` subprocess of `settings` as `app_id` (its consumer group and
    changelog topics), its metrics on `port`, its output into `log`; under cProfile
    into `profile` if given. Returns at once."""
    cli = [
        "-m",
        "candor.cli",
        "worker",
        "--app-id",
        app_id,
        "--metrics-port",
        str(port),
        "--loglevel",
        "warning",
    ]
    args = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else []), *cli]
    env = {**child_env(settings, dict(os.environ)), "CANDOR_LOG_LEVEL": "WARNING"}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def run_worker(
    settings: Settings,
    work: Workload,
    records: list[tuple[bytes, bytes]],
    sessions: int,
    sessions_timeout_s: float,
    profile: Path | None,
) -> WorkerRun:
    """Throughput and memory phases of one `candor worker` subprocess on the empty
    capture.events of `settings` (stopped at the end; no memory phase with
    `sessions` 0). Once its clean output of one warm-up event shows it running,
    `records` are produced; events/s from that moment to the last clean
    record's CreateTime. Raises SystemExit when it stops, stalls or never
    reports the sessions."""
    n = len(work.events)
    port = free_port()
    log_path = settings.home / "worker.log"
    log = log_path.open("wb")
    proc = start_worker(settings, f"{settings.kafka.topic_prefix}worker", port, log, profile)
    reader = _reader(settings, settings.kafka.topic("capture.clean"))
    state = {"n": 0}

    def wait_clean(want: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while state["n"] < want:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"bench: worker stopped/stalled at {state['n']} of {want}\n{log_tail(log_path)}"
                )
            count_clean(reader, state)

    try:
        time.sleep(2)
        rss_start = rss_mb(proc.pid)
        produce(settings, [warmup_event(work, now_micros())])
        wait_clean(1, 300)
        state.clear()
        state["n"] = 0
        started_ms = time.time() * 1000
        produce(settings, records)
        wait_clean(n, 900)
        rate = state["n"] / max(1e-3, (state["last"] - started_ms) / 1000)
        rss_after = rss_mb(proc.pid)
        if sessions <= 0:
            say(f"worker: {state['n']:,} clean events at {rate:,.0f} ev/s")
            return WorkerRun(rate, rss_start, rss_after, 0.0, -1, -1)
        tick_s = settings.streams.timer_interval_s
        base = settled_open_sessions(port, proc, tick_s, 120)
        say(
            f"worker: {state['n']:,} clean events at {rate:,.0f} ev/s; {base:,} of "
            f"{len(work.devices)} simulated devices have an open session (the others' events "
            f"all fit in the {settings.streams.grace_s:.0f} s grace)"
        )
        subjects = [d.subject_id for d in work.devices]
        produce(
            settings,
            session_events(sessions, subjects, work.org_id, settings.streams.grace_s, now_micros()),
        )
        want = base + sessions
        say(f"memory: {sessions:,} more devices produced; waiting for {want:,} open sessions")
        deadline = time.monotonic() + sessions_timeout_s
        while (opened := open_sessions(port)) < want:
            if proc.poll() is not None:
                raise SystemExit(
                    f"bench: the worker stopped at {opened} open sessions\n{log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"bench: candor_worker_open_sessions is {opened} after "
                    f"{sessions_timeout_s:.0f} s, wanted {want} ({base} after the throughput "
                    f"phase + {sessions} new devices); the worker's timer should set it every "
                    f"{tick_s:g} s\n{log_tail(log_path)}"
                )
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
    """The figures of one run on one input format."""

    seed: int
    kind: str  # "single" (one CaptureEvent per record) or "batch" (DeviceBatch records)
    records: int
    events: int
    decode_rate: float
    floor_rate: float  # 0: not measured
    worker: WorkerRun
    stock_rate: float = 0.0  # single-event records, stock fastavro (the yardstick)


def one_run(
    base: Settings,
    work: Workload,
    kind: str,
    seed: int,
    sessions: int,
    sessions_timeout_s: float,
    profile: Path | None,
    floor: bool,
) -> Row:
    """One run of `work` as `kind` records on its own topics and database
    (dropped at the end). Blocks."""
    run_id = uuid.uuid4().hex[:8]
    settings = replace(
        base,
        kafka={"topic_prefix": f"bench-streams-{run_id}."},
        clickhouse={"database": f"bench_streams_{run_id}"},  # the worker's key store
        streams={"session_gap_s": SESSION_GAP_S},
    )
    create_topics(settings)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-streams-") as home:
            # the worker and this process share the master key
            settings = replace(settings, home=Path(home))
            migrate(settings)
            now = now_micros()
            n = len(work.events)
            records = work.records(kind)
            say(
                f"seed {seed}, {kind}: {n:,} events in {len(records):,} records, event times "
                f"from {(now - work.first_ts) / S:,.0f} s to {(now - work.last_ts) / S:,.0f} s "
                f"ago, {work.device_rate:.1f} events/s per active device"
            )
            if kind == "batch":
                say("batch sizes: " + describe_sizes([r[2] for r in records]))
            grant_many(
                settings,
                [
                    grant(None, SCOPES, "bench", now, subject_id=d.subject_id, org_id=work.org_id)
                    for d in work.devices
                ],
                "bench",
            )
            produce(settings, [(key, value) for key, value, _ in records])
            if kind == "single":
                # a first read of freshly produced records is slower (seen: 30%),
                # whichever decoder: one read warms up, then both are timed
                decode_only(settings, n, "stock")
            decode_rate = decode_only(settings, n, kind)
            say(f"decode-only ({kind}): {decode_rate:,.0f} ev/s")
            stock_rate = 0.0
            if kind == "single":
                stock_rate = decode_only(settings, n, "stock")
                say(f"decode-only (single, stock fastavro): {stock_rate:,.0f} ev/s")
            floor_rate = 0.0
            if floor and kind == "single":
                floor_rate = faust_floor(settings, n, Path(home))
                say(f"faust floor: {floor_rate:,.0f} ev/s")
            # The worker gets topics of its own, empty until it runs (see run_worker).
            own = replace(settings, kafka={"topic_prefix": f"{settings.kafka.topic_prefix}worker."})
            create_topics(own)
            grant_many(
                own,
                [
                    grant(None, SCOPES, "bench", now, subject_id=d.subject_id, org_id=work.org_id)
                    for d in work.devices
                ],
                "bench",
            )
            worker = run_worker(
                own,
                work,
                [(key, value) for key, value, _ in records],
                sessions,
                sessions_timeout_s,
                profile,
            )
        return Row(seed, kind, len(records), n, decode_rate, floor_rate, worker, stock_rate)
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


HEADER = (
    f"{'run':>3} {'input':>6} {'seed':>10} {'ev/rec':>6} {'decode ev/s':>12} "
    f"{'floor ev/s':>11} {'worker ev/s':>12} {'w/dec':>6} {'w/dec1':>6} {'RSS start':>10} "
    f"{'RSS after':>10} {'RSS sess':>9} {'sessions':>9}"
)


def format_row(
    label: str,
    kind: str,
    seed: str,
    per_record: float,
    rates: tuple[float, float, float],
    ratios: tuple[float, float],
    rss: tuple[float, float, float],
    sessions: str,
) -> str:
    """One line of the table: (decode, floor, worker) ev/s, (worker over this
    input's decode-only, worker over the single-record decode-only of the same
    run), RSS (start, after, with sessions) MB."""
    floor = f"{rates[1]:>11,.0f}" if rates[1] else f"{'-':>11}"
    return (
        f"{label:>3} {kind:>6} {seed:>10} {per_record:>6.1f} {rates[0]:>12,.0f} {floor} "
        f"{rates[2]:>12,.0f} {ratios[0]:>6.2f} {ratios[1]:>6.2f} {rss[0]:>8.0f}MB "
        f"{rss[1]:>8.0f}MB {rss[2]:>7.0f}MB {sessions:>9}"
    )


def print_row(label: str, rows: list[Row], yardstick: float) -> None:
    """The table line of one run (or, with several rows, their medians) of one input."""
    med = statistics.median
    w_rate = med(r.worker.rate for r in rows)
    print(
        format_row(
            label,
            rows[0].kind,
            str(rows[0].seed) if len(rows) == 1 else "-",
            med(r.events / r.records for r in rows),
            (med(r.decode_rate for r in rows), med(r.floor_rate for r in rows), w_rate),
            (
                med(r.worker.rate / r.decode_rate for r in rows),
                w_rate / yardstick if yardstick else 0.0,
            ),
            (
                med(r.worker.rss_start_mb for r in rows),
                med(r.worker.rss_after_mb for r in rows),
                med(r.worker.rss_sessions_mb for r in rows),
            ),
            f"{med(r.worker.open_sessions for r in rows):,.0f}",
        ),
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[5:]),
    )
    parser.add_argument(
        "--events",
        type=int,
        default=200_000,
        help="throughput events per run: the simulator's first N (default %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs (default %(default)s)")
    parser.add_argument(
        "--people",
        type=int,
        default=400,
        help="simulated people, one device each (default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="simulator seed of every run (default: a fresh random one per run)",
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=10_000,
        help="extra devices (open sessions) for the memory figure (default %(default)s)",
    )
    parser.add_argument(
        "--sessions-timeout",
        type=float,
        default=300,
        help="seconds to wait for the worker to report those sessions (default %(default)s)",
    )
    parser.add_argument(
        "--input",
        choices=("single", "batch", "both"),
        default="both",
        help="capture.events records: one CaptureEvent per event, the capture "
        "SDK's DeviceBatch records, or both in each run (default "
        "%(default)s)",
    )
    parser.add_argument(
        "--device-rate",
        type=float,
        default=15.0,
        help="events/s per active device the simulated event times are "
        "compressed to, 0 = as simulated (default %(default)s)",
    )
    parser.add_argument(
        "--no-floor",
        action="store_true",
        help="skip the faust floor (it runs on single-event records only)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="cProfile the first run's worker into this file (that run is left out of the medians)",
    )
    parser.add_argument(
        "--top", type=int, default=30, help="profile lines to print (default %(default)s)"
    )
    args = parser.parse_args()
    # a SIGTERM (timeout, Ctrl-C from a runner) still stops the worker and drops the topics
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_settings()
    kinds = ["single", "batch"] if args.input == "both" else [args.input]
    print(HEADER, flush=True)
    runs: list[dict[str, Row]] = []
    for i in range(args.runs):
        profile = args.profile if i == 0 else None
        seed = args.seed if args.seed is not None else random.randrange(1, 10**9)
        work = simulated_workload(args.people, seed, args.events, now_micros(), args.device_rate)
        say(
            f"seed {seed}: {work.simulated_rate:.1f} events/s per active device as simulated, "
            f"{work.device_rate:.1f} after compression"
        )
        rows = {
            kind: one_run(
                settings,
                work,
                kind,
                seed,
                args.sessions,
                args.sessions_timeout,
                profile,
                not args.no_floor,
            )
            for kind in kinds
        }
        runs.append(rows)
        yardstick = rows["single"].stock_rate if "single" in rows else 0.0
        for kind in kinds:
            print_row(str(i + 1), [rows[kind]], yardstick)
        if profile:
            print("    (profiled: left out of the medians)")
    timed = runs[1:] if args.profile else runs
    if timed:
        yardstick = (
            statistics.median(r["single"].stock_rate for r in timed) if "single" in kinds else 0.0
        )
        for kind in kinds:
            print_row("med", [r[kind] for r in timed], yardstick)
        if "single" in kinds:
            candor = statistics.median(r["single"].decode_rate for r in timed)
            print(
                f"yardstick: stock fastavro {yardstick:,.0f} ev/s; Candor's decoder on the same "
                f"records {candor:,.0f} ev/s"
                + "".join(
                    f"; {k} worker over Candor's decoder "
                    f"{statistics.median(r[k].worker.rate for r in timed) / candor:.2f}"
                    for k in kinds
                )
            )
    else:
        print("med: none (the only run was profiled)")
    print(
        "w/dec: worker over the decode-only consumer of the same input; w/dec1: worker over "
        "the stock-fastavro decode-only consumer of single-event records (the machine's "
        "yardstick, bench/yardstick.py)"
    )
    print("targets (issue 12): w/dec1 >= 0.5 on batches; RSS <= 500 MB at 100,000 open sessions")
    if args.profile:
        print_profile(args.profile, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
