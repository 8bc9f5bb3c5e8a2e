"""Candor end to end on the local stack, on the capture SDK's device batches:
simulator -> capture SDK (DeviceBatch records) -> Kafka -> `candor worker` ->
`candor sink --all` -> ClickHouse, against the bare path on today's
single-event records in the same run.

    .venv/bin/python bench/e2e.py [--runs 3] [--rates 1000,2500,5000,10000]
                                  [--seconds 20] [--max-events 200000]
                                  [--device-rate 15] [--py-spy FILE]
                                  [--sink-args "--insert-threads 6"]

The load is what the capture SDK sends (bench/e2e_load.py, built once before
the runs): per phase, simulator events of their own people (one person = one
device = one subject, every consent scope granted with data keys), about
``--device-rate`` events/s per active device (the issue's realistic 10-25)
and as many devices as the phase's rate needs, batched per device by a real
`CaptureClient` with its default linger (250 ms) and limits on the event-time
clock (bench/device_batches.py). The batch-size distribution of every phase is
printed. Each DeviceBatch is published with the SDK's producer settings when
the SDK would send it, its events' ts (and its sent_ts) stamped with the wall
clock they were captured at, so capture-to-queryable latency, ClickHouse's
``events.landed_at - ts`` of every row, includes the linger as it does for
users. Each run has its own topic prefix (bench-e2e-<id>.), database, home and
master key, and starts its own worker and sink processes; all is removed at
its end (logs stay in bench/out/e2e-logs/<id>/). Per run:

1. warm-up: ``--warmup`` events at 1,000/s, until queryable (group joins, start-up);
2. one phase per ``--rates`` rate for ``--seconds`` s each: p50/p99 latency
   over the phase's rows once all are queryable (uniqExact(event_id)). A phase
   whose last row lands more than max(10 s, half the phase) after its last
   capture is SATURATED; higher rates are then skipped (unless --all-rates);
3. max: ``--max-events`` events (devices as for the highest rate) published
   as fast as the producer goes, stamped on the load's own timeline from the
   start (each device's events in capture order, published ahead of it: no
   latency figures for this phase);
   end-to-end events/s = events landed / (last row's landed_at - first
   publish) (all of them unless the wait timed out, which is reported);
4. bare path, today's per-event records: worker and sink stopped, the max
   phase's events as single-event CaptureEvent records are produced to a topic
   of their own, then a confluent-kafka consumer (own group) reads them,
   decodes (fastavro), maps rows and inserts them with clickhouse-connect in
   batches of 10,000 into a plain MergeTree copy of `events`; events/s from
   first message to last insert. End to end / bare is the issue's ratio.

Per phase the worker's share of the latency is also given: capture.clean's
CreateTime (the worker's produce time) minus `ts`, for every 10th event; and
the worker's garbage collections and the time they paused it (its /metrics).

Peak RSS (VmRSS) and CPU (cores) of the worker, the sink and this process (the
producer; its RSS includes the pre-built load), of the local stack's Kafka and
ClickHouse (their pidfiles under the settings' home, when found) and the busy
cores of the whole machine are sampled per phase. With
``--py-spy FILE`` the first run's worker is sampled by py-spy (``record
--format raw``) for ``--py-spy-seconds`` from the start of its max phase
(that phase's figures are then not comparable) and its top costs printed.
Prints a progress line per phase (and every 10 s while publishing), the
medians over runs and the targets, writes bench/out/e2e.json and
bench/out/e2e_latency.png.

Targets (issue 12): flat out >= 0.5 of the bare path; p99 <= 2 s at 5,000
events/s and <= 3 s at 10,000 events/s, 10,000 not saturated.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from device_batches import describe_sizes
from e2e_load import Load, Publisher, make_load, say, stage_latency, wire_events
from e2e_report import plot, summarize, table, top_costs, write_json
from e2e_stack import Pipeline, bare_path
from environment import REPO
from usage import Sampler, cpu_s, sink_inserts, worker_gc

from backends.clickhouse.connection import connect
from candor.settings import load_settings
from producers.simulator.simulator import SimulatedDevice

OUT = REPO / "bench" / "out"
ORG = "org-sim"
PY_SPY = Path(sys.executable).parent / "py-spy"
WINDOW = (
    "ts >= fromUnixTimestamp64Micro({a:Int64}, 'UTC') "
    "AND ts <= fromUnixTimestamp64Micro({b:Int64}, 'UTC')"
)


class Run:
    """One run's pipeline, producer and sampler; `phase()` publishes and measures."""

    def __init__(self, pipeline: Pipeline, sampler: Sampler, spy_seconds: int = 20) -> None:
        self.pipeline, self.sampler, self.spy_seconds = pipeline, sampler, spy_seconds
        s = pipeline.settings
        self.publisher = Publisher(s.kafka.bootstrap, s.kafka.topic("capture.events"))
        self.ch = connect(s)

    def _landed(self, a: int, b: int) -> int:
        q = self.ch.query(
            f"SELECT uniqExact(event_id) FROM events WHERE {WINDOW}", parameters={"a": a, "b": b}
        )
        return int(q.result_rows[0][0])

    def phase(
        self, load: Load, rate: float | None, timeout: float, profile: Path | None = None
    ) -> dict[str, Any]:
        """Publish `load` paced at its own rate (`rate`; None: flat out), wait
        until all is queryable (or `timeout` s after publishing), return the
        phase's figures. With `profile`, py-spy samples the worker meanwhile."""
        name = load.name
        self.sampler.phase()
        cpu0 = {c.name: cpu_s(c.pid) for c in self.pipeline.children}
        inserts0, insert_s0 = sink_inserts(self.pipeline.sink_metrics)
        gcs0, gc_s0 = worker_gc(self.pipeline.worker_metrics)
        spy = self._spy(profile) if profile is not None else None
        pub = self.publisher.publish_batches(load, paced=rate is not None)
        say(f"  {name}: published; waiting until queryable")
        deadline = time.monotonic() + timeout
        landed = self._landed(pub.first_ts, pub.last_ts)
        shown = time.monotonic()
        while landed < pub.sent and time.monotonic() < deadline:
            if not self.pipeline.alive():
                raise SystemExit(f"bench: a pipeline process died\n{self.pipeline.diag()}")
            time.sleep(0.25)
            landed = self._landed(pub.first_ts, pub.last_ts)
            if time.monotonic() - shown >= 10:
                shown = time.monotonic()
                say(f"  {name}: {landed:,} of {pub.sent:,} events queryable")
        usage = self.sampler.end()
        used = {c.name: cpu_s(c.pid) - cpu0[c.name] for c in self.pipeline.children}
        inserts1, insert_s1 = sink_inserts(self.pipeline.sink_metrics)
        inserts, insert_s = inserts1 - inserts0, insert_s1 - insert_s0
        gcs1, gc_s1 = worker_gc(self.pipeline.worker_metrics)
        (q50, q99), last_landed, rows = self.ch.query(
            "SELECT quantilesExact(0.5, 0.99)(dateDiff('microsecond', ts, landed_at)), "
            f"toUnixTimestamp64Micro(max(landed_at)), count() FROM events WHERE {WINDOW}",
            parameters={"a": pub.first_ts, "b": pub.last_ts},
        ).result_rows[0]
        last_landed = int(last_landed or pub.started)
        # events/s landed, first publish to last row queryable; the backlog left
        # when the last event was captured took `drain_s` more to land
        landed_rate = landed / max(1e-6, (last_landed - pub.started) / 1e6)
        drain_s = (last_landed - pub.last_ts) / 1e6
        s = self.pipeline.settings
        nan = float("nan")
        w50 = w99 = sent50 = sent99 = nan
        if rate is None:  # published ahead of its capture times: no latency
            q50 = q99 = nan
        else:
            w50, w99, _ = stage_latency(
                s.kafka.bootstrap, s.kafka.topic("capture.clean"), pub.first_ts, pub.last_ts
            )
            # the SDK's linger (and the producer): ts -> its record's CreateTime in capture.events
            sent50, sent99, _ = stage_latency(
                s.kafka.bootstrap, s.kafka.topic("capture.events"), pub.first_ts, pub.last_ts
            )
        phase_s = max(1e-6, (last_landed - pub.started) / 1e6)
        sizes = load.sizes()
        result = {
            "name": name,
            "target_rate": rate or 0,
            "sent": pub.sent,
            "records": pub.records,
            "events_per_record": pub.sent / max(1, pub.records),
            "batch_sizes": describe_sizes(sizes),
            "people": load.people,
            "device_rate": load.device_rate,
            "landed": landed,
            "rows": int(rows),
            "publish_s": pub.seconds,
            "publish_rate": pub.rate,
            "p50_s": q50 / 1e6,
            "p99_s": q99 / 1e6,
            "worker_p50_s": w50,
            "worker_p99_s": w99,
            "sent_p50_s": sent50,
            "sent_p99_s": sent99,
            # the sink's inserts into `events` while the phase ran: how many per
            # second and the share of its wall time they took
            "inserts_per_s": inserts / phase_s,
            "insert_ms": 1000 * insert_s / inserts if inserts else float("nan"),
            "insert_share": insert_s / phase_s,
            # the worker's garbage collections: how many, and their pauses in all
            "worker_gc": gcs1 - gcs0,
            "worker_gc_s": gc_s1 - gc_s0,
            "landed_rate": landed_rate,
            "drain_s": drain_s,
            "saturated": rate is not None and drain_s > max(10.0, 0.5 * pub.seconds),
            "e2e_rate": landed_rate if rate is None else None,
            "rss_max_mb": usage.rss_max_mb,
            "cpu_cores": usage.cpu_cores,
            # CPU seconds of worker and sink for the phase's events: less
            # sensitive to other load on the machine than events/s
            "cpu_s": used,
            "events_per_cpu_s": pub.sent / max(1e-6, sum(used.values())),
            "profiled": spy is not None,
        }
        if spy is not None:
            spy.wait()
        extra = f", end to end {landed_rate:,.0f} ev/s" if rate is None else ""
        say(
            f"  {name}: sent {pub.sent:,} in {pub.records:,} records "
            f"({result['events_per_record']:.1f} events each) at {pub.rate:,.0f}/s, "
            f"landed {landed:,}"
            + (f" ({drain_s:.1f} s after the last capture)" if rate is not None else "")
            + f"{extra}; "
            f"p50 {result['p50_s']:.2f} s, p99 {result['p99_s']:.2f} s (to capture.events "
            f"{sent50:.2f} / {sent99:.2f} s, to capture.clean {w50:.2f} / {w99:.2f} s); "
            f"sink: {result['inserts_per_s']:.1f} inserts/s into events, "
            f"{result['insert_ms']:.1f} ms each, {result['insert_share']:.0%} of its time; "
            f"worker: {gcs1 - gcs0:.0f} garbage collections, {gc_s1 - gc_s0:.2f} s in all; RSS MB "
            + ", ".join(f"{k} {v:.0f}" for k, v in usage.rss_max_mb.items())
            + "; cores "
            + ", ".join(f"{k} {v:.2f}" for k, v in usage.cpu_cores.items())
            + f"; load average {os.getloadavg()[0]:.2f}"
        )
        if landed < pub.sent:
            say(f"  {name}: only {landed:,} of {pub.sent:,} queryable after {timeout:.0f} s")
        if result["saturated"]:
            say(f"  {name}: SATURATED: the pipeline did not keep up with {rate:,.0f}/s")
        return result

    def _spy(self, out: Path) -> subprocess.Popen[bytes]:
        """py-spy sampling the worker into `out` (raw collapsed stacks of the
        thread holding the GIL)."""
        worker = next(c for c in self.pipeline.children if c.name == "worker")
        cmd = [
            str(PY_SPY),
            "record",
            "--gil",  # what holds the GIL: CPU the worker spends, not its idle threads
            "--format",
            "raw",
            "-d",
            str(self.spy_seconds),
            "-p",
            str(worker.pid),
            "-o",
            str(out),
        ]
        say(f"  py-spy on the worker (pid {worker.pid}) for {self.spy_seconds} s -> {out}")
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Loads:
    """Every phase's load, built once for all runs."""

    def __init__(self, args: argparse.Namespace) -> None:
        rate_people = {r: max(1, round(r / args.device_rate)) for r in args.rates}
        self.warmup, _ = make_load(
            "warm-up",
            max(1, round(1000 / args.device_rate)),
            args.seed,
            args.warmup,
            args.device_rate,
            1000.0,
            say,
        )
        self.rates: dict[float, Load] = {}
        for i, rate in enumerate(args.rates, start=1):
            self.rates[rate], _ = make_load(
                f"{rate:g}/s",
                rate_people[rate],
                args.seed + i,
                int(rate * args.seconds),
                args.device_rate,
                rate,
                say,
            )
        self.max, events = make_load(
            "max",
            max(rate_people.values()),
            args.seed + len(args.rates) + 1,
            args.max_events,
            args.device_rate,
            None,
            say,
        )
        self.bare = wire_events(events)

    @property
    def devices(self) -> list[SimulatedDevice]:
        loads = [self.warmup, *self.rates.values(), self.max]
        return [d for load in loads for d in load.devices]


def one_run(index: int, args: argparse.Namespace, loads: Loads) -> dict[str, Any]:
    base = load_settings()
    pipeline = Pipeline(base, args.partitions, args.out / "e2e-logs", shlex.split(args.sink_args))
    say(
        f"run {index}: prefix {pipeline.settings.kafka.topic_prefix} database "
        f"{pipeline.settings.clickhouse.database}, load average {os.getloadavg()[0]:.2f}"
    )
    sampler: Sampler | None = None
    try:
        pipeline.setup(loads.devices, ORG)
        sampler = pipeline.start()
        run = Run(pipeline, sampler, args.py_spy_seconds)
        run.phase(loads.warmup, 1000.0, 240)
        # each phase waits until its backlog has landed before the next starts;
        # past a saturated rate only the queue would be measured: skip the rest
        phases: list[dict[str, Any]] = []
        for rate, load in loads.rates.items():
            if phases and phases[-1]["saturated"] and not args.all_rates:
                say(f"  {rate:g}/s: skipped (saturated at a lower rate; --all-rates runs it)")
                continue
            phases.append(run.phase(load, rate, 120 + load.events / 200))
        spy = args.py_spy if index == 1 else None
        phases.append(run.phase(loads.max, None, 120 + loads.max.events / 200, spy))
        pipeline.stop()
        say(f"  bare path: {len(loads.bare):,} single-event records")
        bare = bare_path(pipeline.settings, loads.bare, args.partitions)
        say(
            f"  bare path: {bare.events:,} events in {bare.seconds:.1f} s = "
            f"{bare.rate:,.0f} ev/s ({bare.events / bare.cpu_s:,.0f} per CPU-s); "
            f"end to end / bare = {phases[-1]['e2e_rate'] / bare.rate:.2f} "
            f"(per CPU-s {phases[-1]['events_per_cpu_s'] / (bare.events / bare.cpu_s):.2f})"
        )
        return {
            "run": index,
            "prefix": pipeline.settings.kafka.topic_prefix,
            "load_average": os.getloadavg(),
            "phases": phases,
            "max": phases[-1],
            "bare": {
                "events": bare.events,
                "seconds": bare.seconds,
                "rate": bare.rate,
                "cpu_s": bare.cpu_s,
            },
        }
    finally:
        if sampler is not None:
            sampler.close()
        pipeline.teardown()


def _rates(text: str) -> list[float]:
    try:
        rates = sorted(float(r) for r in text.split(",") if r.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of rates: {text!r}") from err
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[2:]),
    )
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are quoted (3)")
    parser.add_argument(
        "--rates",
        type=_rates,
        default=[1000.0, 2500.0, 5000.0, 10000.0],
        help="fixed publish rates, events/s, comma separated (1000,2500,5000,10000)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per rate (20)")
    parser.add_argument(
        "--max-events",
        type=int,
        default=200_000,
        help="events of the max-throughput phase (200000)",
    )
    parser.add_argument("--warmup", type=int, default=2000, help="warm-up events (2000)")
    parser.add_argument(
        "--device-rate",
        type=float,
        default=15.0,
        help="events/s per active device (15; the issue's realistic range is 10-25)",
    )
    parser.add_argument("--partitions", type=int, default=12, help="partitions per topic (12)")
    parser.add_argument(
        "--sink-args",
        default="",
        help="more arguments for `candor sink --all` (after --max-age 0.5), "
        "e.g. '--insert-threads 6'",
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    parser.add_argument(
        "--all-rates",
        action="store_true",
        help="run every rate even past the one the pipeline saturates at",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="output directory (bench/out)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="sample the first run's worker with py-spy during its max phase into this "
        "file (raw collapsed stacks) and print its top costs",
    )
    parser.add_argument(
        "--py-spy-seconds", type=int, default=20, help="seconds py-spy samples (20)"
    )
    args = parser.parse_args()
    # a SIGTERM (timeout, runner) still stops the children and drops topics and database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.py_spy is not None:
        args.py_spy = args.py_spy.resolve()
        args.py_spy.parent.mkdir(parents=True, exist_ok=True)

    total = args.warmup + sum(int(r * args.seconds) for r in args.rates) + args.max_events
    say(f"building the load: {total:,} simulator events batched by the capture SDK")
    loads = Loads(args)
    runs = []
    for i in range(1, args.runs + 1):
        runs.append(one_run(i, args, loads))
    summary = summarize(runs)
    doc = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "cpus": os.cpu_count(),
        "runs": runs,
        "summary": summary,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(args.out / "e2e.json", doc)
    plot(args.out / "e2e_latency.png", runs, summary)
    print(table(summary, len(runs)))
    print(f"wrote {args.out / 'e2e.json'} and {args.out / 'e2e_latency.png'}")
    if args.py_spy is not None and args.py_spy.exists():
        print(f"py-spy, run 1's worker during its max phase ({args.py_spy}):")
        print(top_costs(args.py_spy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
