"""The load of bench/e2e.py: what the capture SDK sends for the simulator's
workload, pre-encoded once, stamped with the wall clock as it is published.

Encoding in the bench process would take CPU from the pipeline under test on a
2-core box (and on a real deployment it happens on the capture devices), so
each phase's load is built once, before any run:

- `make_load`: simulator events of ``people`` people (a seed of their own per
  phase, so devices and their seqs never repeat), their event times compressed
  to a per-device rate (10-25 events/s per active device: the issue's
  realistic rate, `device_batches.at_device_rate`) and then scaled to the
  phase's overall rate; the capture SDK batches them per device with its
  default linger and limits (`device_batches.sdk_batches`, a real
  `CaptureClient` on the event-time clock). Each DeviceBatch keeps the byte
  offsets of its events' ``ts`` and of its ``sent_ts``, and when the SDK hands
  it over on that clock (`StampedBatch.sent_at`): at its linger after its
  first event, or at once when a limit closed it;
- `BatchPublisher` produces the batches on their schedule (or flat out) and
  rewrites those 8-byte varints for "now" (the same length for any time
  between 1978 and 3100): exactly the bytes the SDK would have sent, capture
  time included, so the linger is part of the measured latency;
- `WireEvent` (the bare path's records): one today's single-event
  ``CaptureEvent`` record per event, with a hole where ``ts`` goes.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition
from device_batches import BatchRecord, active_rate, at_device_rate, describe_sizes, sdk_batches

from producers.sdk.client import DEFAULT_BATCH_MAX_EVENTS, DEFAULT_LINGER_MS
from producers.sdk.envelope import Event
from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import SimulatedDevice, Simulator
from schemas.batch import decode_capture
from schemas.codec import decode, decode_event, encode_event

PLACEHOLDER_TS = 1_777_777_777_777_777  # micros; zigzag varint is 8 bytes long
S = 1_000_000


def avro_long(value: int) -> bytes:
    """Avro's zigzag varint of a long."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_PLACEHOLDER = avro_long(PLACEHOLDER_TS)


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One encoded capture event with a hole where `ts` goes."""

    key: bytes
    head: bytes
    tail: bytes

    def stamped(self, ts: int) -> bytes:
        """The event's bytes with `ts` (micros); raises ValueError when the
        varint of `ts` is not as long as the placeholder's."""
        varint = avro_long(ts)
        if len(varint) != len(_PLACEHOLDER):
            raise ValueError(f"ts {ts} does not fit the placeholder")
        return self.head + varint + self.tail


def wire_event(event: dict[str, object]) -> WireEvent:
    """Encode `event` with the placeholder ts and cut it around that varint.

    Raises ValueError when the placeholder's bytes are ambiguous in the record."""
    data = encode_event({**event, "ts": PLACEHOLDER_TS})
    at = data.find(_PLACEHOLDER)
    if at < 0 or data.find(_PLACEHOLDER, at + 1) >= 0:
        raise ValueError(f"cannot locate ts in event {event['event_id']}")
    return WireEvent(str(event["device_id"]).encode(), data[:at], data[at + len(_PLACEHOLDER) :])


def wire_events(events: Sequence[Event]) -> list[WireEvent]:
    """`events` as today's single-event records (the bare path's input).
    Checked: a stamped sample decodes back."""
    out = [wire_event(dict(event)) for event in events]
    ts = time.time_ns() // 1000
    if out and decode_event(out[-1].stamped(ts))["ts"] != ts:
        raise SystemExit("bench: ts stamping does not round-trip")
    return out


def _varint8(value: int) -> bytes:
    varint = avro_long(value)
    if len(varint) != len(_PLACEHOLDER):
        raise ValueError(f"time {value} does not fit 8 bytes")
    return varint


@dataclass(frozen=True, slots=True)
class StampedBatch:
    """One DeviceBatch record as the SDK sent it, with holes for the clock.

    ``ts`` are its events' capture times and ``sent_at`` the time the SDK hands
    it over, all in micros after the load's first event; ``ts_at`` and
    ``sent_ts_at`` are the byte offsets of their 8-byte varints in ``value``."""

    key: bytes
    value: bytes
    ts_at: tuple[int, ...]
    ts: tuple[int, ...]
    sent_ts_at: int
    sent_at: int

    @property
    def events(self) -> int:
        return len(self.ts)

    def stamped(self, base: int) -> bytes:
        """The record with every time shifted to ``base`` + its offset (micros).
        Raises ValueError when a time does not fit its 8-byte varint."""
        out = bytearray(self.value)
        for at, t in zip(self.ts_at, self.ts, strict=True):
            out[at : at + 8] = _varint8(base + t)
        out[self.sent_ts_at : self.sent_ts_at + 8] = _varint8(base + self.sent_at)
        return bytes(out)


@dataclass(frozen=True)
class Load:
    """One phase's records, in the order the SDK sent them, and what they model."""

    name: str
    batches: list[StampedBatch]
    people: int
    device_rate: float  # events/s per active device
    rate: float  # events/s over all devices at the load's own pace
    devices: list[SimulatedDevice]

    @property
    def events(self) -> int:
        return sum(b.events for b in self.batches)

    @property
    def span_s(self) -> float:
        """Seconds from the first event to the last record sent, at the load's pace."""
        return max(b.sent_at for b in self.batches) / S if self.batches else 0.0

    def sizes(self) -> list[int]:
        return [b.events for b in self.batches]


def _stamped_batches(records: Sequence[BatchRecord], t0: int, linger_us: int) -> list[StampedBatch]:
    """Locate the clock in each of the SDK's ``records`` and give each its send time.

    A record whose device's next record starts within the linger was closed by
    a limit (bytes, or a seq going back) when that next event came; one of
    `DEFAULT_BATCH_MAX_EVENTS` events was sent with its last; any other one
    at its linger. Raises SystemExit when the clock cannot be located
    unambiguously (checked by decoding every record restamped)."""
    decoded = [decode_capture(r.value) for r in records]
    next_first: dict[int, int] = {}
    last_of: dict[bytes, int] = {}
    for i, (record, batch) in enumerate(zip(records, decoded, strict=True)):
        if batch.rejected:
            raise SystemExit(f"bench: the SDK wrote a batch with a bad event: {batch.rejected[0]}")
        if record.key in last_of:
            next_first[last_of[record.key]] = int(batch.events[0]["ts"])
        last_of[record.key] = i
    out = []
    check = time.time_ns() // 1000
    for i, (record, batch) in enumerate(zip(records, decoded, strict=True)):
        times = [int(e["ts"]) for e in batch.events]
        first, last = times[0], max(times)
        if len(times) >= DEFAULT_BATCH_MAX_EVENTS:
            sent = last
        elif i in next_first and next_first[i] < first + linger_us:
            sent = next_first[i]
        else:
            sent = max(last, first + linger_us)
        value, cursor, ts_at = record.value, 0, []
        for t in times:
            at = value.find(avro_long(t), cursor)
            if at < 0:
                raise SystemExit(f"bench: cannot locate ts {t} in a batch")
            ts_at.append(at)
            cursor = at + len(_PLACEHOLDER)
        sent_ts_at = value.find(avro_long(batch.header.sent_ts), 0, ts_at[0])
        if sent_ts_at < 0:
            raise SystemExit("bench: cannot locate sent_ts in a batch")
        stamped = StampedBatch(
            record.key,
            value,
            tuple(ts_at),
            tuple(t - t0 for t in times),
            sent_ts_at,
            sent - t0,
        )
        again = decode_capture(stamped.stamped(check - stamped.ts[0]))
        want = [{**e, "ts": int(e["ts"]) - times[0] + check} for e in batch.events]
        if again.events != want or again.header.sent_ts != check + sent - times[0]:
            raise SystemExit("bench: restamping a batch changed more than its times")
        out.append(stamped)
    out.sort(key=lambda b: b.sent_at)  # the order they leave the SDK in
    return out


def _at_rate(events: Sequence[Event], rate: float) -> list[Event]:
    """``events`` with event times scaled (from the first) so that they come
    at ``rate`` events/s overall."""
    t0 = int(events[0]["ts"])
    span = int(events[-1]["ts"]) - t0
    if span <= 0:
        return list(events)
    speed = (len(events) - 1) / (span / S) / rate
    return [{**e, "ts": t0 + int((int(e["ts"]) - t0) * speed)} for e in events]


def make_load(
    name: str,
    people: int,
    seed: int,
    count: int,
    device_rate: float,
    rate: float | None,
    progress: Callable[[str], None],
) -> tuple[Load, list[Event]]:
    """``count`` events of ``people`` simulated people (simulator seed ``seed``)
    at ``device_rate`` events/s per active device, scaled to ``rate`` events/s
    overall when given, batched by the capture SDK (default linger and
    limits); and the events themselves (event-time order)."""
    started = time.monotonic()
    sim = Simulator(people, seed, start_ts=1_700_000_000_000_000)
    events = list(itertools.islice(sim.events(1e12), count))
    if len(events) < count:
        raise SystemExit(f"bench: the simulator gave only {len(events)} events")
    events, _factor = at_device_rate(events, device_rate)
    if rate is not None:
        events = _at_rate(events, rate)
    span = (int(events[-1]["ts"]) - int(events[0]["ts"])) / S
    records = sdk_batches(events)
    load = Load(
        name,
        _stamped_batches(records, int(events[0]["ts"]), int(DEFAULT_LINGER_MS * 1000)),
        people,
        active_rate(events),
        (len(events) - 1) / span if span > 0 else float("inf"),
        sim.devices,
    )
    progress(
        f"load {name}: {count:,} events of {people} people at {load.device_rate:.1f} "
        f"events/s per active device, {load.rate:,.0f} events/s overall; "
        f"built in {time.monotonic() - started:.1f} s\n    " + describe_sizes(load.sizes())
    )
    return load, events


@dataclass(frozen=True, slots=True)
class Published:
    """What one publish phase sent: events, first and last stamped ts (micros),
    the wall seconds it took (until every record was acknowledged), records
    and when the first one was produced (wall clock, micros)."""

    sent: int
    first_ts: int
    last_ts: int
    seconds: float
    records: int
    started: int

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


class Publisher:
    """The capture SDK's producer settings (idempotent, acks=all, zstd,
    murmur2 by device) on `topic`."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(dict(producer_config(bootstrap, client_id="candor-bench-e2e")))

    def publish(self, events: list[WireEvent], rate: float | None) -> Published:
        """Produce `events` stamped `ts = now` at `rate`/s (None: as fast as
        librdkafka takes them), then flush. Raises SystemExit when records stay
        unacknowledged."""
        produce, poll = self.producer.produce, self.producer.poll
        topic, n, i = self.topic, len(events), 0
        started = time.monotonic()
        first_ts = time.time_ns() // 1000
        last_ts = first_ts
        while i < n:
            due = n if rate is None else min(n, int((time.monotonic() - started) * rate) + 1)
            while i < due:
                event = events[i]
                last_ts = time.time_ns() // 1000
                try:
                    produce(topic, key=event.key, value=event.stamped(last_ts))
                except BufferError:
                    poll(0.01)
                    continue
                i += 1
                if i % 1000 == 0:
                    poll(0)
            poll(0)
            if i < n:
                time.sleep(0.001)
        left = self.producer.flush(120)
        if left:
            raise SystemExit(f"bench: {left} records not acknowledged")
        return Published(n, first_ts, last_ts, time.monotonic() - started, n, first_ts)

    def publish_batches(self, load: Load, paced: bool) -> Published:
        """Produce `load`'s DeviceBatch records in the order the SDK sent them.

        Paced: each when the SDK sends it (its `sent_at` after the start),
        every time in it stamped from the start, so an event's ts is its
        capture time on the wall clock and waited out its batch's linger
        before it left. Flat out (not paced): as fast as librdkafka takes
        them, stamped the same way, so each device's events keep the order
        and spacing it captured them in, though they are published ahead of
        that timeline (within the worker's 300 s bound on future times; the
        phase's latency figures mean nothing). Stamping each record as sent
        at its own moment instead would shift a device's later records to
        before its earlier ones, a disorder no device produces, which the
        reducers and the state writes would pay for; and stamping into the
        past would mix the phase's time window with the phase before it.
        Then flush; raises SystemExit when records stay unacknowledged.
        Progress on stderr every 10 s."""
        produce, poll = self.producer.produce, self.producer.poll
        topic, batches = self.topic, load.batches
        lead = 0.02 if paced else 0.0  # the first record's time to come
        start = time.monotonic() + lead
        start_wall = time.time_ns() // 1000 + int(lead * S)
        base = start_wall
        first_ts, last_ts, events, shown = 2**62, 0, 0, start
        for i, batch in enumerate(batches):
            if paced:
                # sleep, not poll(wait): librdkafka takes whole milliseconds, so a
                # wait under 1 ms (a record every 0.1-0.6 ms at 2,500-10,000
                # events/s) spun poll(0) and took a third of a core from the
                # pipeline under test on this 2-core machine
                while (wait := start + batch.sent_at / S - time.monotonic()) > 0:
                    poll(0)
                    time.sleep(min(wait, 0.05))
            value = batch.stamped(base)
            while True:
                try:
                    produce(topic, key=batch.key, value=value)
                    break
                except BufferError:
                    poll(0.01)
            events += batch.events
            first_ts = min(first_ts, base + min(batch.ts))
            last_ts = max(last_ts, base + max(batch.ts))
            if i % 200 == 0:
                poll(0)
                if time.monotonic() - shown >= 10:
                    shown = time.monotonic()
                    say(
                        f"  {load.name}: published {events:,} of {load.events:,} events "
                        f"({events / (shown - start):,.0f}/s)"
                    )
        left = self.producer.flush(120)
        if left:
            raise SystemExit(f"bench: {left} records not acknowledged")
        return Published(
            events, first_ts, last_ts, time.monotonic() - start, len(batches), start_wall
        )


def stage_latency(
    bootstrap: str, topic: str, first_ts: int, last_ts: int, sample: int = 10
) -> tuple[float, float, int]:
    """Capture-to-`topic` latency of one phase: (p50 s, p99 s, records sampled).

    Reads `topic` (capture.events or capture.clean) from the first record the broker holds at or
    after `first_ts`, up to the end as of now; for every `sample`-th event (a
    CleanBatch holds several) whose `ts` is in [first_ts, last_ts] the delay
    is its record's CreateTime (set by its producer, ms) minus `ts`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-e2e-stage",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, first_ts // 1000) for p in parts], timeout=10
        )
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        }
        todo = {tp.partition for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        consumer.assign([tp for tp in starts if tp.partition in todo])
        delays: list[int] = []
        seen = 0
        deadline = time.monotonic() + 120
        while todo and time.monotonic() < deadline:
            for m in consumer.consume(10_000, timeout=1.0):
                value, part = m.value(), m.partition()
                if m.error() is not None or value is None or part is None:
                    continue
                offset = m.offset()
                if offset is not None and offset + 1 >= ends[part]:
                    todo.discard(part)
                name, datum = decode(value)
                batched = name in ("CleanBatch", "DeviceBatch")
                for event in datum["events"] if batched else [datum]:
                    seen += 1
                    if seen % sample:
                        continue
                    ts = event["ts"]
                    if first_ts <= ts <= last_ts:
                        delays.append(m.timestamp()[1] * 1000 - ts)
    finally:
        consumer.close()
    if not delays:
        return float("nan"), float("nan"), 0
    delays.sort()

    def pick(q: float) -> float:
        return delays[min(len(delays) - 1, int(q * len(delays)))] / 1e6

    return pick(0.5), pick(0.99), len(delays)


def say(line: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)
