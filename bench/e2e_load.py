"""The load of bench/e2e.py: simulator events pre-encoded once, stamped with
the wall clock as they are published.

Encoding in the bench process would take CPU from the pipeline under test on a
2-core box (and on a real deployment it happens on the capture devices), so
each event is encoded once with a placeholder `ts`; at publish time the
placeholder's Avro varint is swapped for the current time's (same length for
any time between 1978 and 3100), which gives exactly the bytes `encode_event`
would produce for `ts = now`.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import SimulatedDevice, Simulator
from schemas.codec import decode, decode_event, encode_event

PLACEHOLDER_TS = 1_777_777_777_777_777  # micros; zigzag varint is 8 bytes long


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


def generate(
    people: int, seed: int, count: int, progress: Callable[[str], None]
) -> tuple[list[SimulatedDevice], list[WireEvent]]:
    """`count` simulator events of `people` people, pre-encoded, in event-time
    order (so per device in seq order). Checked: a stamped sample decodes back."""
    sim = Simulator(people, seed, start_ts=1_700_000_000_000_000)
    out: list[WireEvent] = []
    started = time.monotonic()
    events: Iterator[dict[str, object]] = itertools.islice(sim.events(1e12), count)
    for i, event in enumerate(events):
        out.append(wire_event(event))
        if (i + 1) % 100_000 == 0:
            progress(
                f"generated {i + 1:,} of {count:,} events "
                f"({(i + 1) / (time.monotonic() - started):,.0f}/s)"
            )
    if len(out) < count:
        raise SystemExit(f"bench: the simulator gave only {len(out)} events")
    ts = time.time_ns() // 1000
    if decode_event(out[-1].stamped(ts))["ts"] != ts:
        raise SystemExit("bench: ts stamping does not round-trip")
    return sim.devices, out


@dataclass(frozen=True, slots=True)
class Published:
    """What one publish phase sent: count, first and last stamped ts (micros)
    and the wall seconds it took (until every record was acknowledged)."""

    sent: int
    first_ts: int
    last_ts: int
    seconds: float

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
        return Published(n, first_ts, last_ts, time.monotonic() - started)


def stage_latency(
    bootstrap: str, topic: str, first_ts: int, last_ts: int, sample: int = 10
) -> tuple[float, float, int]:
    """Capture-to-`topic` latency of one phase: (p50 s, p99 s, records sampled).

    Reads `topic` (capture.clean) from the first record the broker holds at or
    after `first_ts`, up to the end as of now; for every `sample`-th event (a
    CleanBatch holds several) whose `ts` is in [first_ts, last_ts] the delay
    is its record's CreateTime (set by the worker's producer, ms) minus `ts`."""
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
                for event in datum["events"] if name == "CleanBatch" else [datum]:
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
