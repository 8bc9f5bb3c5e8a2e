"""The `candor` command line: one entry point, one settings object.

Each sub-command builds nothing itself: it takes the Settings built here once
and hands them to the module that does the work.
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from candor.settings import Settings, load_settings, replace

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from producers.gateway.auth import TokenFile
    from producers.gateway.frames import FrameRoutes

Handler = Callable[[argparse.Namespace, Settings], int]


def _frame_routes(
    settings: Settings, tokens: TokenFile, registry: CollectorRegistry
) -> FrameRoutes:
    """The gateway's frame route (imported when a gateway with frames starts)."""
    from candor.frame_gateway import open_frame_routes

    return open_frame_routes(settings, tokens, registry)


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from candor import stack

    if args.action == "up":
        stack.up(settings, kafka_nodes=args.kafka_nodes)
        if args.kafka_nodes > 1:
            first = int(settings.kafka.bootstrap.split(",")[0].rsplit(":", 1)[-1])
            brokers = ",".join(f"127.0.0.1:{first + i}" for i in range(args.kafka_nodes))
            print(
                f"kafka: {args.kafka_nodes} nodes at {brokers}; for topics replicated as "
                "in production: export CANDOR_KAFKA__REPLICATION_FACTOR="
                f"{min(3, args.kafka_nodes)} CANDOR_KAFKA_BOOTSTRAP={brokers}"
            )
    elif args.action == "down":
        stack.down(settings)
        return 0
    healths = stack.status(settings)
    for h in healths:
        print(f"{h.server:<11} {'up' if h.up else 'DOWN':<5} {h.endpoint:<24} {h.detail}")
    return 0 if all(h.up for h in healths) else 3


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from backends.kafka import topics

    if args.action == "create":
        for name, state in topics.create_topics(settings).items():
            print(f"{name:<20} {state}")
        return 0
    for name, parts in sorted(topics.describe_topics(settings).items()):
        if not name.startswith("__"):
            print(f"{name:<40} {parts} partitions")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from candor import demo

    seed = args.seed if args.seed is not None else time.time_ns() % 1_000_000_007
    return demo.run(
        settings,
        people=args.people,
        rate=args.rate,
        duration=args.duration,
        seed=seed,
        frames_per_person=args.frames_per_person,
    )


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app import worker_config
    from streams.worker import run_worker

    if args.batch:
        settings = replace(settings, streams={"batch_max": args.batch})
    if args.session_gap:
        settings = replace(settings, streams={"session_gap_s": args.session_gap})
    cfg = worker_config(settings, app_id=args.app_id)
    return run_worker(settings, cfg, metrics_port=args.metrics_port, loglevel=args.loglevel)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = argparse.ArgumentParser(
        prog="candor",
        description="Candor: consented capture-to-analytics event bus (Kafka, Faust, ClickHouse).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    handlers: dict[str, Handler] = {}

    p = sub.add_parser("stack", help="start, stop or check the local Kafka/ClickHouse/Prometheus")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument(
        "--kafka-nodes",
        type=int,
        default=1,
        metavar="N",
        help="with up: run Kafka as a cluster of N KRaft nodes on the settings' "
        "Kafka port and the next N-1 (default 1: one node)",
    )
    handlers["stack"] = _stack

    p = sub.add_parser("topics", help="create or list Candor's Kafka topics (idempotent)")
    p.add_argument("action", choices=["create", "list"])
    handlers["topics"] = _topics

    p = sub.add_parser("demo", help="run the pipeline demo on the local stack")
    p.add_argument("--people", type=int, default=50, help="simulated people (default 50)")
    p.add_argument("--rate", type=float, default=1000.0, help="events/s (default 1000)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of capture (60)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="simulator seed (default: a new one per run, printed; the same "
        "seed replays the same people and events, which the pipeline "
        "then drops as duplicates)",
    )
    p.add_argument(
        "--frames-per-person",
        type=int,
        default=2,
        help="screen frames with pixels per person consenting to screen_frames, "
        "put through a gateway, redacted by OCR (~0.7 s CPU each) and "
        "exported as computer-use steps (default 2; 0: none)",
    )
    handlers["demo"] = _demo
    from candor.gateway_cli import add_commands as add_producer_commands

    handlers.update(add_producer_commands(sub, frame_routes=_frame_routes))

    from candor.sinks_cli import add_commands as add_sink_commands

    handlers.update(add_sink_commands(sub))

    from candor.privacy_cli import add_commands as add_privacy_commands

    handlers.update(add_privacy_commands(sub))

    from candor.dlq_cli import add_commands as add_dlq_commands

    handlers.update(add_dlq_commands(sub))

    from candor.canary import add_commands as add_canary_commands

    handlers.update(add_canary_commands(sub))

    from candor.portal.cli import add_commands as add_portal_commands

    handlers.update(add_portal_commands(sub))

    p = sub.add_parser(
        "worker",
        help="run a stream worker (validate, consent, redact, "
        "sessionize, aggregate, reduce to actions)",
    )
    p.add_argument(
        "--app-id",
        default=None,
        help="Faust app id = consumer group, and the prefix of its table changelog "
        "topics (default: candor-streams, after CANDOR_KAFKA__TOPIC_PREFIX, so "
        "that pipelines sharing a cluster never share a worker's state)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=0,
        help="max events per batch (default: CANDOR_STREAMS__BATCH_MAX, 5000)",
    )
    p.add_argument(
        "--session-gap",
        type=float,
        default=0,
        help="inactivity gap closing a session, seconds (default 900)",
    )
    p.add_argument("--metrics-port", type=int, default=9401, help="0 disables /metrics")
    p.add_argument("--loglevel", default="info")
    handlers["worker"] = _worker
    return parser, handlers


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else getattr(logging, settings.log_level.upper(), 20),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A fatal signal in a Python thread (native code under it included) writes
    # every thread's Python stack to stderr, the service's log. librdkafka's own
    # threads block signals: a crash there shows only as exit status -11.
    faulthandler.enable()
    try:
        return handlers[args.command](args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # a CLI prints a clear error, not a traceback
        if args.verbose:
            raise
        print(f"candor {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
