"""`candor migrate | sink | query | export`: the sinks' sub-commands.

`add_commands(subparsers)` adds them to the `candor` parser and returns their
handlers ``{command: handler(args, settings) -> exit code}``, to be merged into
`candor.cli`'s handler table.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from candor.settings import Settings
from schemas.topics import Topic

Handler = Callable[[argparse.Namespace, Settings], int]

log = logging.getLogger(__name__)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.migrate import migrate

    applied = migrate(settings)
    print(f"applied: {', '.join(f'{v:04d}' for v in applied)}" if applied else "up to date")
    return 0


def _sink(args: argparse.Namespace, settings: Settings) -> int:
    """Run the sink(s) until SIGINT/SIGTERM (exit 0 after writing what was
    buffered). A sink that cannot go on stops the others; its error is logged
    as the last line and the command exits 1."""
    from sinks.consumer import SinkOptions, run_all, run_sink
    from sinks.routes import route_by_topic, route_for

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import KeyView
    from privacy.content_keys import sink_decrypt

    # content arrives encrypted per subject: decrypt for ClickHouse, skip the erased
    keys = KeyView(
        lambda: connect(settings), settings.master_key(), interval=settings.privacy.key_reload_s
    )
    keys.start()
    options = SinkOptions(
        max_rows=args.max_rows,
        max_age=args.max_age,
        insert_threads=args.insert_threads,
        dlq_topic=args.dlq_topic or settings.kafka.topic(Topic.CAPTURE_DLQ),
        decrypt=sink_decrypt(keys),
    )
    lag_reporter: threading.Thread | None = None
    try:
        if args.all:
            lag_reporter = _serve_metrics(args.metrics_port, settings, None, stop)
            for table, stats in run_all(settings, stop, options).items():
                print(f"{table:<17} {stats.rows} rows, {stats.dead_letters} dead letters")
            return 0
        route = route_for(args.table) if args.table else route_by_topic(args.topic)
        topic = settings.kafka.topic(args.topic) if not args.table else args.topic
        lag_reporter = _serve_metrics(args.metrics_port, settings, {route.table: topic}, stop)
        stats = run_sink(settings, topic, route.table, stop, options)
        print(f"{route.table}: {stats.rows} rows, {stats.dead_letters} dead letters")
        return 0
    except Exception as err:
        log.debug("sink failure", exc_info=True)  # the traceback, with -v
        log.error("sink stopped: %s: %s", type(err).__name__, err)
        return 1
    finally:
        # Release every librdkafka handle before the interpreter goes away.
        stop.set()
        if lag_reporter is not None:
            lag_reporter.join(30)
        keys.stop()


def _serve_metrics(
    port: int, settings: Settings, targets: dict[str, str] | None, stop: threading.Event
) -> threading.Thread | None:
    """Serve /metrics on 127.0.0.1:`port` (0: not at all) and report the consumer
    lag of the ``{table: topic}`` sinks (None: every default route). Returns the
    lag reporter's thread (None without metrics); it ends once `stop` is set."""
    if not port:
        return None
    from prometheus_client import start_http_server

    from sinks.lag import default_topics, start_lag_reporter
    from sinks.routes import ROUTES

    start_http_server(port, addr=settings.metrics_host)
    return start_lag_reporter(settings, targets or default_topics(settings, sorted(ROUTES)), stop)


def _query(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.queries import format_table, list_queries, parse_params, run_query

    if args.name is None:
        for q in list_queries():
            params = ", ".join(f"{k}:{v}" for k, v in q.parameters.items())
            print(f"{q.name:<24} {q.answers}  [{params}]")
        return 0
    columns, rows = run_query(settings, args.name, parse_params(args.param))
    print(format_table(columns, rows))
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.export import ExportProgress, export

    if getattr(args, "profile", "trajectories") == "computer-use":
        return _export_computer_use(args, settings)

    def report(p: ExportProgress) -> None:
        print(f"  shard {p.shards}: {p.trajectories} trajectories, {p.actions} actions")

    result = export(settings, args.start, args.end, args.out, fmt=args.format, progress=report)
    print(
        f"export {result.export_id}: {result.trajectories} trajectories of "
        f"{result.subjects} subjects in {len(result.shards)} shards -> {result.out_dir}"
    )
    return 0


def _export_computer_use(args: argparse.Namespace, settings: Settings) -> int:
    from backends.clickhouse.connection import connect
    from backends.clickhouse.key_store import load_keyset
    from backends.frame_store import open_frame_store
    from sinks.export_frames import export_computer_use

    client = connect(settings)
    keys = load_keyset(client, settings.master_key())
    result = export_computer_use(
        settings,
        args.start,
        args.end,
        args.out,
        client=client,
        store=open_frame_store(settings.frames, settings.home),
        keys=keys,
    )
    print(
        f"export {result.export_id}: {result.trajectories} episodes, {result.actions} steps "
        f"of {result.subjects} subjects in {len(result.shards)} shards -> {result.out_dir}"
    )
    return 0


def _time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from err


def add_commands(subparsers: Any) -> dict[str, Handler]:
    """Add migrate/sink/query/export to ``subparsers``; return their handlers."""
    from sinks.routes import ROUTES

    p = subparsers.add_parser("migrate", help="apply ClickHouse migrations (idempotent)")
    p = subparsers.add_parser("sink", help="land Kafka topics in ClickHouse exactly once")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--topic",
        help="one of Candor's topics (the topic prefix is applied), or any topic name with --table",
    )
    which.add_argument("--all", action="store_true", help="every default topic, one thread each")
    p.add_argument("--table", choices=sorted(ROUTES), help="target table (default: by topic)")
    p.add_argument("--max-rows", type=int, default=10_000, help="batch size (default 10000)")
    p.add_argument("--max-age", type=float, default=1.0, help="batch age in s (default 1)")
    p.add_argument(
        "--insert-threads",
        type=int,
        default=12,
        help="ClickHouse connections inserting one round's batches (one per partition) "
        "at once, per table (default 12: a round of the local stack's 12 partitions in "
        "one wave)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=9411,
        help="serve /metrics on 127.0.0.1 (default 9411; 0 disables)",
    )
    p.add_argument(
        "--dlq-topic",
        default=None,
        help="dead-letter topic (default: capture.dlq with the topic prefix)",
    )
    p = subparsers.add_parser("query", help="list or run the analyst queries")
    p.add_argument("name", nargs="?", help="query name (omit to list)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a parameter")
    p = subparsers.add_parser("export", help="export consented training trajectories")
    p.add_argument("--start", type=_time, required=True, help="ISO time, inclusive")
    p.add_argument("--end", type=_time, required=True, help="ISO time, exclusive")
    p.add_argument("--out", type=Path, required=True, help="new or empty directory")
    p.add_argument("--format", choices=["parquet", "jsonl"], default="parquet")
    p.add_argument(
        "--profile",
        choices=["trajectories", "computer-use"],
        default="trajectories",
        help="computer-use: (screenshot, PyAutoGUI action) "
        "steps with a dataset card, Parquet only (sinks/export_frames.py)",
    )
    return {"migrate": _migrate, "sink": _sink, "query": _query, "export": _export}
