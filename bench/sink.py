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

3. ``--cpu`` (no servers): the sink's CPU per event before and for the
   insert, `bench/sink_cpu.py`.

    python bench/sink.py --cpu --runs 5 --rows 100000
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from environment import REPO  # noqa: F401  (sets the path for the packages below)
from sink_cpu import cpu_main

from backends.clickhouse.connection import connect
from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import Settings, load_settings, replace
from privacy.content_keys import keep_content
from schemas import codec
from sinks.consumer import SinkOptions, run_sink
from sinks.migrate import migrate
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
        return cpu_main(args)  # bench/sink_cpu.py

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
