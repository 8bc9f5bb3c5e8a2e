"""The sink's CPU per event on capture.clean, no servers: `bench/sink.py --cpu`.

The part of the sink that competes with the stream worker for the machine's
cores. The simulator's first ``--rows`` events (400 people, 15 events/s per
active device) cut into the capture SDK's device batches, each sealed under
its subject's key and encoded as the `CleanBatch` the worker writes; then, per
Kafka batch of ``--messages`` records, what `sinks.consumer` does before the
insert: decode, open the sealed content once per record and build the columns
(`sinks.routes.map_into`), timed with ``time.process_time``. Figures:
microseconds of CPU per event, median over ``--runs``, beside decode alone and
decode + open on the same records, decoded as the sink does
(`sinks.routes.decode_record`). Then "serialise": what the insert costs the
sink's process before anything is sent, clickhouse-connect turning each Kafka
batch's columns into its Native format (compressed as the sink's client sends
it), for the column types migration 0001 gives the `events` table (no server
asked).

    python bench/sink.py --cpu --runs 5 --rows 100000
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Iterator
from typing import Any

from clickhouse_connect.datatypes.base import ClickHouseType
from clickhouse_connect.datatypes.registry import get_from_name
from clickhouse_connect.driver.compression import available_compression
from clickhouse_connect.driver.insert import InsertContext
from clickhouse_connect.driver.rustcodec import _make_native_transform
from device_batches import at_device_rate, describe_sizes, sdk_batches
from environment import REPO  # noqa: F401  (sets the path for the packages below)

from privacy.content_keys import seal_clean_batch, sink_decrypt
from privacy.keyset import KeyRecord, KeySet
from privacy.wrapping import new_data_key, wrap_data_key
from producers.simulator.simulator import Simulator, backdated_start
from schemas import codec
from schemas.batch import decode_capture
from sinks.columns import Columns
from sinks.migrate import load_migrations
from sinks.routes import decode_record, map_into, route_for

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
