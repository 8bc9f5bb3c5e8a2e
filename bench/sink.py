"""Benchmark of the exactly-once ClickHouse sink. A program, not a test: it prints figures.

1. Throughput: the sink (`sinks.consumer.run_sink`) joins its group and lands
   one warm-up record; then N encoded capture events are produced to its
   topic; rows/s from the first produced until all N are queryable.
   The same rows are then inserted by a bare clickhouse-connect `insert`
   (10,000-row chunks, no Kafka, no decoding) into a copy of the table.
2. Latency: with the sink running, events are produced at a fixed rate
   (default 5000/s for 30 s) with ``ts`` = time of capture, batched per
   device for at most the SDK's default linger (250 ms) with ``--batch`` > 1; capture-to-queryable
   is ``landed_at - ts`` of every row (``landed_at`` is set by ClickHouse at
   insert), reported as p50/p99.

Records: with ``--batch N`` (default 20) the events go to the topic as
`CleanBatch` records of N consecutive events of one device, the way the
stream worker writes capture.clean; ``--batch 1`` writes one `CaptureEvent`
record per event (capture.clean before clean batches).

Each figure is the median over ``--runs`` runs. Uses its own database and
topics (removed at the end) on the servers of the settings / environment.

    python bench/sink.py --runs 3 --rows 100000 --rate 5000 --seconds 30 --batch 20

3. ``--cpu`` (no servers): the sink's own CPU per event on capture.clean, the
   part that competes with the stream worker for the machine's cores. The
   simulator's first ``--rows`` events (400 people, 15 events/s per active
   device) cut into the capture SDK's device batches, each sealed under its
   subject's key and encoded as the `CleanBatch` the worker writes; then, per
   Kafka batch of ``--messages`` records, what `sinks.consumer` does before
   the insert: decode, open the sealed content once per record and build the
   columns (`sinks.routes.map_into`), timed with ``time.process_time``.
   Figures: microseconds of CPU per event, median over ``--runs``, beside
   decode alone and decode + open on the same records, decoded as the sink
   does (`sinks.routes.decode_record`). Then "serialise": what the insert
   costs the sink's process before anything is sent, clickhouse-connect
   turning each Kafka batch's columns into its Native format (compressed as
   the sink's client sends it), for the column types migration 0001 gives
   the `events` table (`serialise`; no server asked).

    python bench/sink.py --cpu --runs 5 --rows 100000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.compression import available_compression
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.rustcodec import _make_native_transform
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from device_batches import at_device_rate, describe_sizes, sdk_batches
from environment import REPO  # noqa: F401  (sets the path for the packages below)

from backends.clickhouse.connection import connect
from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import Settings, load_settings, replace
from privacy.content_keys import keep_content, seal_clean_batch, sink_decrypt
from privacy.keyset import KeyRecord, KeySet
from privacy.wrapping import new_data_key, wrap_data_key
from producers.simulator.simulator import Simulator, backdated_start
from schemas import codec
from schemas.batch import decode_capture
from sinks.columns import Columns
from sinks.consumer import SinkOptions, run_sink
from sinks.migrate import load_migrations, migrate
from sinks.routes import decode_record, map_into, route_for
from sinks.rows import EVENT_COLUMNS, event_row

#: The SDK's default linger: a device's events wait at most this long for a batch.
LINGER_S = 0.25
KINDS = ("KeyInput", "MouseMove", "MouseClick", "Scroll", "WindowFocus", "TerminalCommand")


def make_event(i: int, ts: int) -> dict[str, Any]:
    """A realistic capture event, payload type cycling through the common kinds."""
    kind = KINDS[i % len(KINDS)]
    payloads: dict[str, dict[str, Any]] = {
        "KeyInput": {
            "type": "KeyInput",
            "key": None,
            "text": "def main():",
            "modifiers": [],
            "is_secure_field": False,
            "count": 11,
        },
        "MouseMove": {
            "type": "MouseMove",
            "path": [{"dt_ms": 8 * k, "x": 10 * k, "y": 5 * k} for k in range(8)],
        },
        "MouseClick": {"type": "MouseClick", "button": "left", "x": 300, "y": 200, "double": False},
        "Scroll": {"type": "Scroll", "dx": 0, "dy": -120},
        "WindowFocus": {"type": "WindowFocus", "previous_app_name": "firefox"},
        "TerminalCommand": {
            "type": "TerminalCommand",
            "command": "pytest -q",
            "exit_code": 0,
            "cwd_hash": "c" * 16,
        },
    }
    return {
        "event_id": str(uuid.uuid4()),
        "org_id": "org-bench",
        "subject_id": f"s{i % 200}",
        "device_id": f"d{i % 400}",
        "seq": i,
        "ts": ts,
        "received_ts": ts,
        "app": {"app_name": "code", "window_title": "main.py", "url_host": None},
        "payload": payloads[kind],
        "redactions": [],
        "consent_version": 1,
        "client_version": "bench",
    }


def records(events: list[dict[str, Any]], batch: int) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` of the records carrying ``events``: single CaptureEvents
    (``batch`` 1) or CleanBatches of up to ``batch`` consecutive events of one
    device (content in clear, no key: the sink runs with `keep_content`)."""
    if batch <= 1:
        return [(e["device_id"].encode(), codec.encode_event(e)) for e in events]
    by_device: dict[str, list[dict[str, Any]]] = {}
    out: list[tuple[bytes, bytes]] = []

    def close(device: str) -> None:
        evs = by_device.pop(device)
        seqs = [e["seq"] for e in evs]
        datum = {
            "batch_id": evs[0]["event_id"],
            "org_id": evs[0]["org_id"],
            "subject_id": evs[0]["subject_id"],
            "device_id": device,
            "first_seq": min(seqs),
            "last_seq": max(seqs),
            "key_id": None,
            "content": None,
            "events": evs,
        }
        out.append((device.encode(), codec.encode("CleanBatch", datum)))

    for e in events:
        evs = by_device.setdefault(e["device_id"], [])
        evs.append(e)
        if len(evs) >= batch:
            close(e["device_id"])
    for device in list(by_device):
        close(device)
    return out


def _producer(settings: Settings) -> Producer:
    return Producer(
        {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )


def _count(settings: Settings, table: str = "events") -> int:
    return int(connect(settings).query(f"SELECT count() FROM {table}").result_rows[0][0])


class _Sink:
    def __init__(self, settings: Settings, topic: str, group: str) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=run_sink,
            args=(
                settings,
                topic,
                "events",
                self.stop,
                SinkOptions(decrypt=keep_content, group=group, dlq_topic=f"{topic}.dlq"),
            ),
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(60)


def throughput(settings: Settings, topic: str, rows: int, batch: int) -> tuple[float, float]:
    """Return (sink rows/s, bare insert rows/s) for ``rows`` events in records of ``batch``.

    The sink first lands one warm-up record (its consumer group joined, its
    first insert done), so that neither is in the figure; then the records,
    encoded beforehand, are produced, and the clock runs from the first
    produced until all ``rows`` are queryable. (Timing from the first landed
    batch instead measured nothing when one batch held most of the rows, as
    records of 20 events make it do.)
    """
    now = int(time.time() * 1_000_000)
    events = [make_event(i, now - i) for i in range(rows)]
    encoded = records(events, batch)
    producer = _producer(settings)
    sink = _Sink(settings, topic, f"bench-{uuid.uuid4().hex[:8]}")
    warm = make_event(rows, now)
    producer.produce(topic, key=warm["device_id"].encode(), value=codec.encode_event(warm))
    producer.flush(60)
    while _count(settings) < 1:
        time.sleep(0.01)
    start = time.monotonic()
    for key, value in encoded:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    producer.flush(120)
    while _count(settings) < rows + 1:
        time.sleep(0.02)
    sink_rate = rows / (time.monotonic() - start)
    sink.close()

    client = connect(settings)
    client.command("CREATE TABLE IF NOT EXISTS events_bare AS events")
    data = [event_row(e) for e in events]
    start = time.monotonic()
    for i in range(0, rows, 10_000):
        client.insert("events_bare", data[i : i + 10_000], column_names=list(EVENT_COLUMNS))
    bare_rate = rows / (time.monotonic() - start)
    client.command("DROP TABLE events_bare")
    return sink_rate, bare_rate


def latency(
    settings: Settings, topic: str, rate: int, seconds: float, batch: int
) -> tuple[float, float, int]:
    """Produce at ``rate``/s for ``seconds`` with the sink running; return (p50 s, p99 s, rows)."""
    client = connect(settings)
    client.command("TRUNCATE TABLE events")
    sink = _Sink(settings, topic, f"bench-{uuid.uuid4().hex[:8]}")
    time.sleep(3)  # let the group settle
    producer = _producer(settings)
    sent, begin = 0, time.monotonic()
    pending: list[dict[str, Any]] = []
    flushed = begin
    while (elapsed := time.monotonic() - begin) < seconds:
        due = int(elapsed * rate)
        stamp = int(time.time() * 1_000_000)
        pending += [make_event(i, stamp) for i in range(sent, due)]
        sent = max(sent, due)
        if batch <= 1 or time.monotonic() - flushed >= LINGER_S:
            for key, value in records(pending, batch):
                producer.produce(topic, key=key, value=value)
            pending, flushed = [], time.monotonic()
        producer.poll(0)
        time.sleep(0.001)
    for key, value in records(pending, batch):
        producer.produce(topic, key=key, value=value)
    producer.flush(60)
    deadline = time.monotonic() + 120
    while _count(settings) < sent and time.monotonic() < deadline:
        time.sleep(0.2)
    sink.close()
    p50, p99 = client.query(
        "SELECT quantilesExact(0.5, 0.99)(dateDiff('microsecond', ts, landed_at)) FROM events"
    ).result_rows[0][0]
    return p50 / 1e6, p99 / 1e6, sent


MASTER = bytes(range(32))


def clean_records(rows: int, seed: int = 7) -> tuple[list[bytes], KeySet]:
    """The `CleanBatch` records of the simulator's first ``rows`` events, one per
    device batch the capture SDK sends (at 15 events/s per active device), and
    the keys that open them."""
    now = time.time_ns() // 1000
    sim = Simulator(400, seed, backdated_start(400, seed, rows, now))
    events: list[dict[str, Any]] = []
    for event in sim.events(365 * 86_400.0):
        events.append(dict(event))
        if len(events) >= rows:
            break
    events = [dict(e) for e in at_device_rate(events, 15.0)[0]]
    batches = [decode_capture(b.value).events for b in sdk_batches(events)]
    print("batch sizes: " + describe_sizes([len(b) for b in batches]), flush=True)
    records = []
    for subject in sorted({str(e["subject_id"]) for e in events}):
        key = new_data_key()
        records.append(
            KeyRecord(subject, key.key_id, wrap_data_key(MASTER, subject, key), 1, False)
        )
    keys = KeySet(records, MASTER)
    values = [
        codec.encode("CleanBatch", seal_clean_batch(str(evs[0]["event_id"]), evs, keys))
        for evs in batches
    ]
    return values, keys


def sink_cpu(values: list[bytes], keys: KeySet, messages: int) -> dict[str, float]:
    """Microseconds of CPU per event: decode alone, decode + open, and the sink's
    whole mapping (decode, open, columns) in Kafka batches of ``messages`` records."""
    decrypt = sink_decrypt(keys)

    def decode() -> int:
        return sum(len(decode_record(v)[1]["events"]) for v in values)

    def decode_open() -> int:
        events = 0
        for value in values:
            name, datum = decode_record(value)
            events += len((decrypt(name, datum) or {"events": ()})["events"])
        return events

    def columns() -> int:
        return sum(len(built) for built in sink_columns(values, keys, messages))

    out = {}
    steps = (
        ("decode", decode),
        ("decode+open", decode_open),
        ("sink", columns),
    )
    for name, step in steps:
        cpu = time.process_time()
        events = step()
        out[name] = (time.process_time() - cpu) / events * 1e6
    return out


def sink_columns(values: list[bytes], keys: KeySet, messages: int) -> Iterator[Columns]:
    """The columns the sink builds of ``values``, one `Columns` per Kafka batch of
    ``messages`` records (`sinks.routes.map_into`, as `sinks.consumer` calls it)."""
    route = route_for("events")
    decrypt = sink_decrypt(keys)
    for first in range(0, len(values), messages):
        built = Columns(len(route.columns))
        stamps: list[int] = []
        for offset, value in enumerate(values[first : first + messages], first):
            map_into(route, built, stamps, value, None, "capture.clean", 0, offset, decrypt)
        built.lists  # noqa: B018  (rows waiting as tuples move into the lists here)
        yield built


def table_types(table: str) -> dict[str, str]:
    """``{column: ClickHouse type}`` of ``table`` as migration 0001 creates it
    (no column of it is altered since)."""
    template = load_migrations()[0].template
    body = template.split(f"CREATE TABLE IF NOT EXISTS {{db}}.{table} {{on_cluster}}\n(\n")[1]
    types = {}
    for line in body.split("\n)\n")[0].splitlines():
        line = line.strip().removesuffix(",")
        if line and not line.startswith(("--", "CONSTRAINT")):
            name, _, type_name = line.partition(" ")
            types[name] = type_name.split(" DEFAULT ")[0]
    return types


def serialise(batches: list[Columns], names: list[str], types: list[ClickHouseType]) -> int:
    """Turn ``batches`` into the bytes `client.insert(..., column_oriented=True)`
    sends for them: clickhouse-connect's Native encoder (the one a client
    resolves by default) and the compression a client with ``compress=True``
    negotiates (lz4 where installed), both as `Client.data_insert` picks
    them. Returns the bytes' length."""
    transform = _make_native_transform()
    sent = 0
    for built in batches:
        context = InsertContext(
            "events",
            names,
            types,
            built.lists,
            column_oriented=True,
            compression=available_compression[0],
        )
        sent += sum(map(len, transform.build_insert(context)))
        if context.insert_exception is not None:
            raise context.insert_exception
    return sent


def cpu_main(args: argparse.Namespace) -> int:
    values, keys = clean_records(args.rows)
    runs = []
    for run in range(args.runs):
        runs.append(sink_cpu(values, keys, args.messages))
        print(f"run {run + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[-1].items()))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        f"median of {args.runs}, {len(values):,} CleanBatch records, "
        f"{args.messages:,} per Kafka batch: us of CPU per event: "
        + ", ".join(f"{k} {v:.2f}" for k, v in med.items())
        + f"; the sink's own part (columns) {med['sink'] - med['decode+open']:.2f}"
    )
    batches = list(sink_columns(values, keys, args.messages))
    names = list(route_for("events").columns)
    types = table_types("events")
    column_types = [get_from_name(types[name]) for name in names]
    events = sum(map(len, batches))
    # once, untimed: the first insert imports and sets up what every later one reuses
    # (~0.25 s here), and the batches just built move to the oldest generation
    serialise([batches[0][:1]], names, column_types)
    gc.collect()
    figures = []
    for run in range(args.runs):
        cpu = time.process_time()
        sent = serialise(batches, names, column_types)
        figures.append((time.process_time() - cpu) / events * 1e6)
        print(f"run {run + 1}: serialise {figures[-1]:.2f}")
    print(
        f"median of {args.runs}: serialise {statistics.median(figures):.2f} us/event "
        f"(clickhouse-connect's Native format, {available_compression[0]}: "
        f"{sent / events:.0f} bytes per event sent)"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000, help="events of the throughput run")
    parser.add_argument("--rate", type=int, default=5_000, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=30.0, help="duration of the latency run")
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--batch", type=int, default=20, help="events per CleanBatch record")
    parser.add_argument("--cpu", action="store_true", help="CPU per event, no servers")
    parser.add_argument("--messages", type=int, default=5_000, help="records per Kafka batch")
    args = parser.parse_args()
    if args.cpu:
        return cpu_main(args)

    tag = uuid.uuid4().hex[:8]
    settings = replace(
        load_settings(),
        kafka={"partitions": args.partitions},
        clickhouse={"database": f"candor_bench_{tag}"},
    )
    migrate(settings)
    topics: list[str] = []
    results: list[tuple[float, float, float, float]] = []
    try:
        for run in range(args.runs):
            t1, t2 = f"bench.sink.tp.{tag}.{run}", f"bench.sink.lat.{tag}.{run}"
            topics += [t1, t2]
            create_topics(settings, [TopicSpec(t, "device_id", "delete", 1) for t in (t1, t2)])
            connect(settings).command("TRUNCATE TABLE events")
            sink_rate, bare_rate = throughput(settings, t1, args.rows, args.batch)
            p50, p99, sent = latency(settings, t2, args.rate, args.seconds, args.batch)
            results.append((sink_rate, bare_rate, p50, p99))
            print(
                f"run {run + 1}: sink {sink_rate:,.0f} rows/s, bare insert {bare_rate:,.0f} "
                f"rows/s; {sent} events at {args.rate}/s: p50 {p50:.3f}s p99 {p99:.3f}s",
                flush=True,
            )
    finally:
        connect(settings, database="").command(
            f"DROP DATABASE IF EXISTS {settings.clickhouse.database}"
        )
        AdminClient(settings.kafka.client_config()).delete_topics(
            topics + [f"{t}.dlq" for t in topics]
        )
    med = [statistics.median(r[i] for r in results) for i in range(4)]
    print(
        f"median of {args.runs} (records of up to {args.batch}): sink {med[0]:,.0f} rows/s | "
        f"bare clickhouse-connect insert {med[1]:,.0f} rows/s | "
        f"capture-to-queryable at {args.rate}/s: p50 {med[2]:.3f}s p99 {med[3]:.3f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
