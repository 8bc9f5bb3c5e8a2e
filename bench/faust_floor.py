"""Faust floor: the events/s faust's own per-record intake allows on this machine.

    .venv/bin/python bench/faust_floor.py --topic T --events N [--bootstrap 127.0.0.1:9092]
        [--partitions 12] [--app-id bench-faust-floor] [--datadir DIR]

A minimal faust-streaming app with one agent on `--topic` that does
``async for events in stream.take_events(5000, within=0.5)`` and only counts,
on the stream worker's app class (`streams.transport.App`: faust's Kafka
transport with an eager per-record hand-over), or on plain `faust.App` with
`--stock`.
Its app settings are the ones of the real stream worker that shape intake
(`streams.app.build_app`: broker_commit_every, stream_buffer_maxsize,
consumer_max_fetch_size, auto offset reset earliest, no web server, memory
store, raw bytes key and value), and `--app-id` is its consumer group, so a
new id reads the topic from the start. bench/worker.py runs it in a
subprocess, so it has its own event loop and CPU, as the worker does.

Once `--events` events arrived it prints one line to stdout and stops
(SIGTERM to itself: faust's worker shuts down cleanly, exit code 0):

    faust-floor {"events": 200000, "seconds": 36.1, "rate": 5401.2}

`rate` is the events delivered after the first batch divided by the seconds
from the first batch to the last one, so neither start-up, group join nor the
wait for the first batch is counted. No faust worker doing real work per
event can be faster than this on the same machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import environment  # noqa: F401  (the repository's packages on sys.path)

if TYPE_CHECKING:  # imported where used: bench/worker.py reads results without faust
    import faust


RESULT_PREFIX = "faust-floor "
BATCH_MAX = 5000
BATCH_WITHIN_S = 0.5


@dataclass
class Count:
    """What the agent saw: events, the first batch's size and perf_counter times."""

    events: int = 0
    first_batch: int = 0
    first: float = 0.0
    last: float = 0.0
    reported: bool = False

    def result(self) -> dict[str, float]:
        """Events, seconds and rate as printed (rate 0.0 when one batch held everything)."""
        seconds = self.last - self.first
        after_first = self.events - self.first_batch
        rate = after_first / seconds if seconds > 0 else 0.0
        return {"events": self.events, "seconds": round(seconds, 3), "rate": round(rate, 1)}


def build_app(
    app_id: str,
    bootstrap: str,
    topic: str,
    partitions: int,
    datadir: Path,
    events: int,
    count: Count,
    stock: bool = False,
) -> faust.App:
    """The floor app: the worker's intake settings, one counting agent, on the
    worker's app class (`streams.transport.App`) or, with `stock`, on plain
    `faust.App`. Nothing connects until a faust worker starts it."""
    import faust

    from streams.app import new_app
    from streams.transport import App

    app_class = faust.App if stock else App
    app = new_app(app_class, app_id, bootstrap, partitions, datadir)
    source = app.topic(
        topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )

    @app.agent(source)
    async def take(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
            now = time.perf_counter()
            if not count.events:
                count.first, count.first_batch = now, len(batch)
            count.events += len(batch)
            count.last = now
            if count.events >= events and not count.reported:
                count.reported = True
                print(RESULT_PREFIX + json.dumps(count.result()), flush=True)
                # mode's worker handles SIGTERM by stopping every service cleanly
                os.kill(os.getpid(), signal.SIGTERM)

    return app


def parse_result(stdout: str) -> dict[str, float] | None:
    """The result printed by a floor run, or None when `stdout` has none. The line
    may follow terminal control codes (faust's worker writes some to stdout)."""
    for line in reversed(stdout.splitlines()):
        at = line.find(RESULT_PREFIX)
        if at >= 0:
            parsed: dict[str, float] = json.loads(line[at + len(RESULT_PREFIX) :])
            return parsed
    return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog='Prints \'faust-floor {"events": N, "seconds": S, "rate": R}\' and exits 0 '
        "once --events events arrived; exits non-zero without that line otherwise.",
    )
    parser.add_argument("--topic", required=True, help="topic to read (raw bytes records)")
    parser.add_argument(
        "--events",
        type=int,
        required=True,
        help="stop after this many events (at most what the topic holds)",
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument(
        "--partitions",
        type=int,
        default=12,
        help="the topic's partition count (as the worker declares it)",
    )
    parser.add_argument(
        "--app-id",
        default="bench-faust-floor",
        help="faust app id = consumer group; use a new one to read from the start",
    )
    parser.add_argument(
        "--stock",
        action="store_true",
        help="plain faust.App instead of the worker's app class (whose "
        "transport hands records over eagerly: streams/transport.py)",
    )
    parser.add_argument(
        "--datadir",
        type=Path,
        default=None,
        help="faust's data directory (default: a temporary one)",
    )
    args = parser.parse_args()
    from faust.worker import Worker

    for name in ("aiokafka", "kafka", "mode", "faust"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="faust-floor-") as tmp:
        count = Count()
        app = build_app(
            args.app_id,
            args.bootstrap,
            args.topic,
            args.partitions,
            args.datadir or Path(tmp),
            args.events,
            count,
            args.stock,
        )
        worker = Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
        code = 0
        try:
            worker.execute_from_commandline()  # returns only via SystemExit
        except SystemExit as stop:
            code = int(stop.code or 0)
    # stopped without a result (crash, an outside SIGTERM/SIGINT): never exit 0
    return code if count.reported else (code or 1)


if __name__ == "__main__":
    sys.exit(main())
