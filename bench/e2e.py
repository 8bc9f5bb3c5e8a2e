"""Candor end to end on the local stack: simulator -> Kafka -> `candor worker` ->
`candor sink --all` -> ClickHouse, against the bare path.

    .venv/bin/python bench/e2e.py [--runs 3] [--rates 1000,2500,5000,10000]
                                  [--seconds 20] [--max-events 200000] [--people 200]

Simulator events (`--people` people, every consent scope granted with data
keys) are generated and Avro-encoded once; each is stamped `ts = now` as it is
published with the capture SDK's producer settings, so capture-to-queryable
latency is ClickHouse's `events.landed_at - ts` of every row. Each run has its
own topic prefix (bench-e2e-<id>.), database, home and master key, and starts
its own worker and sink processes; all is removed at its end (logs stay in
bench/out/e2e-logs/<id>/). Per run:

1. warm-up: `--warmup` events at 1,000/s, until queryable (group joins, start-up);
2. one phase per `--rates` rate for `--seconds` s each: p50/p99 latency over
   the phase's rows once all are queryable (uniqExact(event_id)). A phase
   whose last row lands more than max(10 s, half the phase) after the last
   publish is SATURATED; higher rates are then skipped (unless --all-rates);
3. max: `--max-events` events published as fast as the producer goes;
   end-to-end events/s = events landed / (last row's landed_at - first
   publish) (all of them unless the wait timed out, which is reported);
4. bare path: worker and sink stopped, a confluent-kafka consumer (own group)
   reads the run's whole capture.events, decodes (fastavro), maps rows and
   inserts them with clickhouse-connect in batches of 10,000 into a plain
   MergeTree copy of `events`; events/s from first message to last insert.

Per phase the worker's share of the latency is also given: capture.clean's
CreateTime (the worker's produce time) minus `ts`, for every 10th record.

Peak RSS (VmRSS) and CPU (cores) of the worker, the sink and this process (the
producer; its RSS includes the pre-generated events) are sampled per phase.
Prints a progress line per phase, the medians over runs and the targets,
writes bench/out/e2e.json and bench/out/e2e_latency.png.

Targets (issue 7): >= 20,000 events/s end to end and >= 0.3 of the bare path;
p99 <= 2 s at 5,000 events/s.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from e2e_load import Publisher, WireEvent, generate, say, stage_latency
from e2e_report import plot, summarize, table, write_json
from e2e_stack import Pipeline, Sampler, bare_path
from environment import REPO

from backends.clickhouse.connection import connect
from candor.settings import load_settings

OUT = REPO / "bench" / "out"
ORG = "org-sim"
WINDOW = (
    "ts >= fromUnixTimestamp64Micro({a:Int64}, 'UTC') "
    "AND ts <= fromUnixTimestamp64Micro({b:Int64}, 'UTC')"
)


class Run:
    """One run's pipeline, producer and sampler; `phase()` publishes and measures."""

    def __init__(self, pipeline: Pipeline, sampler: Sampler) -> None:
        self.pipeline, self.sampler = pipeline, sampler
        s = pipeline.settings
        self.publisher = Publisher(s.kafka.bootstrap, s.kafka.topic("capture.events"))
        self.ch = connect(s)

    def _landed(self, a: int, b: int) -> int:
        q = self.ch.query(
            f"SELECT uniqExact(event_id) FROM events WHERE {WINDOW}", parameters={"a": a, "b": b}
        )
        return int(q.result_rows[0][0])

    def phase(
        self, name: str, events: list[WireEvent], rate: float | None, timeout: float
    ) -> dict[str, Any]:
        """Publish `events` at `rate` (None: flat out), wait until all are
        queryable (or `timeout` s after publishing), return the phase's figures."""
        self.sampler.phase()
        pub = self.publisher.publish(events, rate)
        deadline = time.monotonic() + timeout
        landed = self._landed(pub.first_ts, pub.last_ts)
        while landed < pub.sent and time.monotonic() < deadline:
            if not self.pipeline.alive():
                raise SystemExit(f"bench: a pipeline process died\n{self.pipeline.diag()}")
            time.sleep(0.25)
            landed = self._landed(pub.first_ts, pub.last_ts)
        usage = self.sampler.end()
        (q50, q99), last_landed, rows = self.ch.query(
            "SELECT quantilesExact(0.5, 0.99)(dateDiff('microsecond', ts, landed_at)), "
            f"toUnixTimestamp64Micro(max(landed_at)), count() FROM events WHERE {WINDOW}",
            parameters={"a": pub.first_ts, "b": pub.last_ts},
        ).result_rows[0]
        last_landed = int(last_landed or pub.first_ts)
        # events/s landed, first publish to last row queryable; the backlog left
        # when publishing ended took `drain_s` more to land
        landed_rate = landed / max(1e-6, (last_landed - pub.first_ts) / 1e6)
        drain_s = (last_landed - pub.last_ts) / 1e6
        s = self.pipeline.settings
        w50, w99, _ = stage_latency(
            s.kafka.bootstrap, s.kafka.topic("capture.clean"), pub.first_ts, pub.last_ts
        )
        result = {
            "name": name,
            "target_rate": rate or 0,
            "sent": pub.sent,
            "landed": landed,
            "rows": int(rows),
            "publish_s": pub.seconds,
            "publish_rate": pub.rate,
            "p50_s": q50 / 1e6,
            "p99_s": q99 / 1e6,
            "worker_p50_s": w50,
            "worker_p99_s": w99,
            "landed_rate": landed_rate,
            "drain_s": drain_s,
            "saturated": rate is not None and drain_s > max(10.0, 0.5 * pub.seconds),
            "e2e_rate": landed_rate if rate is None else None,
            "rss_max_mb": usage.rss_max_mb,
            "cpu_cores": usage.cpu_cores,
        }
        extra = f", end to end {landed_rate:,.0f} ev/s" if rate is None else ""
        say(
            f"  {name}: sent {pub.sent:,} at {pub.rate:,.0f}/s, landed {landed:,} "
            f"({drain_s:.1f} s after the last publish){extra}; "
            f"p50 {result['p50_s']:.2f} s, p99 {result['p99_s']:.2f} s (to capture.clean "
            f"{w50:.2f} / {w99:.2f} s); RSS MB "
            + ", ".join(f"{k} {v:.0f}" for k, v in usage.rss_max_mb.items())
            + "; cores "
            + ", ".join(f"{k} {v:.2f}" for k, v in usage.cpu_cores.items())
        )
        if landed < pub.sent:
            say(f"  {name}: only {landed:,} of {pub.sent:,} queryable after {timeout:.0f} s")
        if result["saturated"]:
            say(f"  {name}: SATURATED: the pipeline did not keep up with {rate:,.0f}/s")
        return result


def one_run(
    index: int, args: argparse.Namespace, devices: list[Any], events: list[WireEvent]
) -> dict[str, Any]:
    base = load_settings()
    pipeline = Pipeline(base, args.partitions, args.out / "e2e-logs")
    say(
        f"run {index}: prefix {pipeline.settings.kafka.topic_prefix} database "
        f"{pipeline.settings.clickhouse.database}, load average {os.getloadavg()[0]:.2f}"
    )
    sampler: Sampler | None = None
    try:
        pipeline.setup(devices, ORG)
        sampler = pipeline.start(args.profile if index == 1 else None)
        run = Run(pipeline, sampler)
        cursor = 0

        def take(n: int) -> list[WireEvent]:
            nonlocal cursor
            cursor += n
            return events[cursor - n : cursor]

        run.phase("warm-up", take(args.warmup), 1000.0, 240)
        # each phase waits until its backlog has landed before the next starts;
        # past a saturated rate only the queue would be measured: skip the rest
        phases: list[dict[str, Any]] = []
        for rate in args.rates:
            if phases and phases[-1]["saturated"] and not args.all_rates:
                say(f"  {rate:g}/s: skipped (saturated at a lower rate; --all-rates runs it)")
                continue
            phases.append(
                run.phase(
                    f"{rate:g}/s",
                    take(int(rate * args.seconds)),
                    rate,
                    120 + rate * args.seconds / 200,
                )
            )
        phases.append(run.phase("max", take(args.max_events), None, 120 + args.max_events / 200))
        pipeline.stop()
        bare = bare_path(pipeline.settings, cursor)
        say(
            f"  bare path: {bare.events:,} events in {bare.seconds:.1f} s = "
            f"{bare.rate:,.0f} ev/s; end to end / bare = {phases[-1]['e2e_rate'] / bare.rate:.2f}"
        )
        return {
            "run": index,
            "prefix": pipeline.settings.kafka.topic_prefix,
            "load_average": os.getloadavg(),
            "phases": phases,
            "max": phases[-1],
            "bare": {"events": bare.events, "seconds": bare.seconds, "rate": bare.rate},
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
        "--people", type=int, default=200, help="simulated people = devices = subjects (200)"
    )
    parser.add_argument("--partitions", type=int, default=12, help="partitions per topic (12)")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    parser.add_argument(
        "--all-rates",
        action="store_true",
        help="run every rate even past the one the pipeline saturates at",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="output directory (bench/out)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the first run's worker under cProfile into this file "
        "(slows it: that run's figures are not comparable)",
    )
    args = parser.parse_args()
    # a SIGTERM (timeout, runner) still stops the children and drops topics and database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.profile is not None:
        args.profile = args.profile.resolve()
        args.profile.parent.mkdir(parents=True, exist_ok=True)

    total = args.warmup + sum(int(r * args.seconds) for r in args.rates) + args.max_events
    say(f"generating {total:,} simulator events of {args.people} people")
    devices, events = generate(args.people, args.seed, total, say)
    runs = []
    for i in range(1, args.runs + 1):
        runs.append(one_run(i, args, devices, events))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
