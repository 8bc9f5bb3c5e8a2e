"""DeviceBatch records from the simulator's workload, built by the capture SDK itself.

`sdk_batches` feeds events (merged across devices, in event-time order) to a
real `producers.sdk.client.CaptureClient` whose linger clock is the event time and
whose transport only collects records: the records are the ones the SDK would
send for that capture, with its default linger and limits, provided the
application polls the client between events (as the desktop agent does).

The simulator's people capture about 2-3 events per active second of a
device. `compress_time` rescales the event-time axis (ending where it ended)
so that a device's active rate reaches a target (the issue's 10-25 events/s
per active device); event order, the mix and per-device seq are unchanged.

    .venv/bin/python bench/device_batches.py [--events 100000] [--people 400] [--device-rate 15]

prints the batch-size distribution of one workload, without any server.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from producers.sdk.client import DEFAULT_LINGER_MS, CaptureClient
from producers.sdk.envelope import Event
from producers.sdk.spool_frame import Header
from producers.sdk.transport import DeliveryCallback

S = 1_000_000


@dataclass(frozen=True)
class BatchRecord:
    """One record as the SDK sent it: key, value and how many events it holds."""

    key: bytes
    value: bytes
    events: int


class _Collector:
    """A `Transport` that acknowledges everything and keeps what it got."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []
        self._callbacks: list[DeliveryCallback] = []

    def produce(
        self,
        key: bytes | None,
        value: bytes,
        headers: Sequence[Header],
        on_delivery: DeliveryCallback,
    ) -> None:
        self.records.append((key, value))
        self._callbacks.append(on_delivery)

    def poll(self, timeout: float) -> int:
        served, self._callbacks = self._callbacks, []
        for callback in served:
            callback(None)
        return len(served)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return 0

    def purge(self) -> None:
        self.poll(0)


def active_rate(events: Sequence[Event]) -> float:
    """Mean events per second of a device, over the seconds in which it captured any."""
    per_second = Counter((e["device_id"], e["ts"] // S) for e in events)
    return len(events) / max(1, len(per_second))


def at_device_rate(events: Sequence[Event], target: float) -> tuple[list[Event], float]:
    """``events`` time-compressed so that their `active_rate` is about ``target``
    (never stretched), and the factor used."""
    factor, out = 1.0, list(events)
    for _ in range(4):  # compressing also merges seconds: converge on the target
        rate = active_rate(out)
        if rate >= target * 0.97:
            break
        factor *= target / rate
        out = compress_time(events, factor)
    return out, factor


def compress_time(events: Sequence[Event], factor: float) -> list[Event]:
    """``events`` with event times brought ``factor`` times closer together,
    towards the last one (which stays). ``factor`` <= 1 changes nothing."""
    if factor <= 1 or not events:
        return list(events)
    end = events[-1]["ts"]
    return [{**e, "ts": end - int((end - e["ts"]) / factor)} for e in events]


def sdk_batches(events: Sequence[Event], linger_ms: float = DEFAULT_LINGER_MS) -> list[BatchRecord]:
    """The records the capture SDK sends for ``events`` (in event-time order)
    with linger ``linger_ms`` on the event-time clock and its default limits.
    Blocks on CPU only (a temporary spool directory, never written)."""
    from schemas.batch import decode_capture

    collector = _Collector()
    clock = [0.0]
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as spool:
        first = events[0]
        client = CaptureClient(
            "unused:9092",
            spool_dir=Path(spool),
            org_id=str(first["org_id"]),
            subject_id=str(first["subject_id"]),
            device_id=str(first["device_id"]),
            registry=CollectorRegistry(),
            spool_fsync="never",
            transport_factory=lambda: collector,
            monotonic=lambda: clock[0],
            linger_ms=linger_ms,
        )
        for event in events:
            clock[0] = event["ts"] / S
            client.poll(0)  # what leaves on the linger before this event was captured
            client.publish(event)
        clock[0] += linger_ms / 1000
        if client.close(10.0):
            raise SystemExit("bench: the SDK kept records in its spool")
    return [
        BatchRecord(key or b"", value, decode_capture(value).size)
        for key, value in collector.records
    ]


def describe_sizes(sizes: Sequence[int]) -> str:
    """A one-line distribution of batch sizes (events per record) and a histogram line."""
    ordered = sorted(sizes)

    def pct(p: float) -> int:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    buckets = [(1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, 10**9)]
    hist = "  ".join(
        f"{lo}{'' if lo == hi else ('+' if hi >= 10**9 else f'-{hi}')}:"
        f"{sum(lo <= s <= hi for s in ordered) / len(ordered):.0%}"
        for lo, hi in buckets
    )
    return (
        f"{len(ordered):,} records for {sum(ordered):,} events: mean "
        f"{statistics.fmean(ordered):.1f}, p10 {pct(0.1)}, p50 {pct(0.5)}, p90 {pct(0.9)}, "
        f"p99 {pct(0.99)}, max {ordered[-1]} events per record\n"
        f"    share of records by events per record: {hist}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--device-rate",
        type=float,
        default=15.0,
        help="events/s per active device to compress to (default %(default)s)",
    )
    parser.add_argument("--linger-ms", type=float, default=DEFAULT_LINGER_MS)
    args = parser.parse_args()
    from producers.simulator.simulator import Simulator

    events = list(
        itertools.islice(Simulator(args.people, args.seed, 0).events(365 * 86_400.0), args.events)
    )
    rate = active_rate(events)
    events, _factor = at_device_rate(events, args.device_rate)
    started = time.perf_counter()
    records = sdk_batches(events, args.linger_ms)
    print(
        f"simulator: {rate:.1f} events/s per active device; compressed to "
        f"{active_rate(events):.1f}; linger {args.linger_ms:g} ms; SDK batching took "
        f"{time.perf_counter() - started:.1f} s"
    )
    print(describe_sizes([r.events for r in records]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
