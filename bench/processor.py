"""The worker's batch processor in one process, without servers: events/s of
`streams.processor.BatchProcessor` on the capture SDK's DeviceBatch records
(or on single-event records), against `schemas.batch.decode_capture` alone.

    .venv/bin/python bench/processor.py [--events 100000] [--people 400] [--device-rate 15]
                                        [--input batch|single] [--runs 3]
                                        [--gc default|freeze|tuned] [--seed S]

Workload: the simulator's first ``--events`` events of ``--people`` people,
event times compressed to ``--device-rate`` events/s per active device, cut
into the records the capture SDK sends with its default linger and limits
(`bench/device_batches.py`; the batch-size distribution is printed). Every
subject has consent with every scope and a data key.

The processor runs as in the worker (route, seal and encode CleanBatch
records, fold sessions/minutes/actions, encode their outputs, write one state
per device per batch), in batches of 5000 records like the worker's agent;
the output only counts what it is sent (no Kafka), the table is a dict. So
the figure leaves out faust's intake and librdkafka; it shows what the
processor itself costs per event. Decode-only: `decode_capture` on the same
records. Medians over ``--runs`` (a fresh processor and table each run), per
second of wall time and per second of this process's CPU time (steadier on a
shared machine).

``--gc``: ``default`` (Python's thresholds), ``freeze`` (`gc.freeze()` after
start-up, as `candor worker` does), ``tuned`` (freeze and the worker's
thresholds, `streams.worker.GC_THRESHOLDS`).

Profile it with py-spy (a sampling profiler; cProfile doubles this code's run
time): ``py-spy record -o prof.svg -- .venv/bin/python bench/processor.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from typing import Any

from device_batches import at_device_rate, describe_sizes, sdk_batches
from environment import REPO  # noqa: F401  (sets the path for the packages below)

from privacy.consent import ConsentPolicy
from privacy.keyset import KeyRecord, KeySet
from privacy.scope import Scope
from privacy.wrapping import new_data_key, wrap_data_key
from producers.simulator.simulator import Simulator, backdated_start
from schemas.batch import decode_capture
from schemas.codec import encode_event
from streams.processor import BatchProcessor, WorkerConfig
from streams.router import RawMessage
from streams.worker import GC_THRESHOLDS

MASTER = bytes(range(32))
RECORDS_PER_BATCH = 5000


class CountingOutput:
    def __init__(self) -> None:
        self.records = 0
        self.bytes = 0

    def send(self, topic: str, key: Any, value: bytes | None, headers: Any = None) -> None:
        self.records += 1
        self.bytes += len(value or b"")

    def checkpoint(self) -> None:
        return None

    async def delivered(self, delivery: None, timeout: float = 60.0) -> None:
        return None

    async def flush(self, timeout: float = 60.0) -> None:
        return None


class Registry:
    def __init__(self, policies: dict[str, ConsentPolicy]) -> None:
        self.policies = policies
        self.alive = True

    def get(self, subject_id: str) -> ConsentPolicy | None:
        return self.policies.get(subject_id)

    def __len__(self) -> int:
        return len(self.policies)


def workload(people: int, seed: int, n: int, rate: float) -> list[dict[str, Any]]:
    now = time.time_ns() // 1000
    sim = Simulator(people, seed, backdated_start(people, seed, n, now))
    events: list[dict[str, Any]] = []
    for event in sim.events(365 * 86_400.0):
        events.append(dict(event))
        if len(events) >= n:
            break
    if rate > 0:
        compressed, _ = at_device_rate(events, rate)
        events = [dict(e) for e in compressed]
    return events


def run_once(
    records: list[RawMessage], subjects: set[str], org: str, now: int
) -> tuple[float, float]:
    keys = []
    for subject in subjects:
        key = new_data_key()
        keys.append(KeyRecord(subject, key.key_id, wrap_data_key(MASTER, subject, key), 1, False))
    policies = {
        s: ConsentPolicy(
            subject_id=s,
            org_id=org,
            version=1,
            scopes=frozenset(Scope),
            changed_by="bench",
            changed_at=0,
            reason=None,
        )
        for s in subjects
    }
    processor = BatchProcessor(
        WorkerConfig(),
        output=CountingOutput(),
        table={},
        consent=Registry(policies),
        keys=KeySet(keys, MASTER),
        clock=lambda: now,
    )

    async def all_batches() -> int:
        events = 0
        for i in range(0, len(records), RECORDS_PER_BATCH):
            result = await processor.process(records[i : i + RECORDS_PER_BATCH])
            events += len(result.outcomes)
        return events

    started, cpu = time.perf_counter(), time.process_time()
    events = asyncio.run(all_batches())
    return (events / (time.perf_counter() - started), events / (time.process_time() - cpu))


def decode_rate(records: list[RawMessage]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    n = sum(decode_capture(r.value).size for r in records)
    return n / (time.perf_counter() - started), n / (time.process_time() - cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--device-rate", type=float, default=15.0)
    parser.add_argument("--input", choices=("batch", "single"), default="batch")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gc", choices=("default", "freeze", "tuned"), default="tuned")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    events = workload(args.people, args.seed, args.events, args.device_rate)
    now = max(e["ts"] for e in events) + 1_000_000
    if args.input == "batch":
        batches = sdk_batches(events)
        print("batch sizes: " + describe_sizes([b.events for b in batches]))
        records = [
            RawMessage(b.key, b.value, "capture.events", 0, i) for i, b in enumerate(batches)
        ]
    else:
        records = [
            RawMessage(str(e["device_id"]).encode(), encode_event(e), "capture.events", 0, i)
            for i, e in enumerate(events)
        ]
    subjects = {str(e["subject_id"]) for e in events}
    org = str(events[0]["org_id"])
    del events
    if args.gc != "default":
        gc.collect()
        gc.freeze()
    if args.gc == "tuned":
        gc.set_threshold(*GC_THRESHOLDS)
    med = statistics.median
    decodes = [decode_rate(records) for _ in range(args.runs)]
    rates = [run_once(records, subjects, org, now) for _ in range(args.runs)]
    decode, decode_cpu = med(d[0] for d in decodes), med(d[1] for d in decodes)
    worker, worker_cpu = med(r[0] for r in rates), med(r[1] for r in rates)
    print(
        f"input {args.input}, gc {args.gc}: {len(records):,} records; events per second "
        f"of wall time (of CPU time): decode-only {decode:,.0f} ({decode_cpu:,.0f}); "
        f"processor {worker:,.0f} ({worker_cpu:,.0f}), runs "
        f"{', '.join(f'{r[0]:,.0f} ({r[1]:,.0f})' for r in rates)}; "
        f"processor/decode {worker / decode:.2f} ({worker_cpu / decode_cpu:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
