"""`candor canary`: a heartbeat through the whole pipeline, and its age.

Every ``interval`` seconds the canary publishes one capture event (an
``ActivityState`` "active", no content) to ``capture.events`` for a reserved
identity, then asks ClickHouse's ``events`` table for the newest canary event
that landed. Its age is exported as ``candor_canary_age_seconds``: while the
pipeline (broker → worker → capture.clean → sink → ClickHouse) flows, the age
stays near interval + transit; when any stage stalls it grows, and the
``CandorCanaryStale`` alert fires.

Exclusion from analyst views: the canary writes under its own organisation,
``org_id = "candor-canary"`` (`CANARY_ORG`). Every analyst query and view of
Candor is scoped by ``org_id`` (queries take ``{org_id:String}``), so canary
rows never appear in an organisation's figures; no real organisation may use
that id (the gateway should refuse tokens for it). Its sessions, minutes and
actions land too (the canary exercises those paths as well) under the same org.

Consent: the reserved subject is granted ``activity_metadata`` at start (the
one scope an event without content needs), through `backends.kafka.consent_registry`.
The event's ``seq`` is its timestamp in micros, so it only grows across
restarts and the worker's per-device dedup never drops a heartbeat.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from candor.settings import Settings
from schemas.topics import Topic

log = logging.getLogger(__name__)

CANARY_ORG = "candor-canary"
CANARY_SUBJECT = "candor-canary"
CANARY_APP = "candor-canary"
MICROS = 1_000_000

Handler = Callable[[argparse.Namespace, Settings], int]


@dataclass(frozen=True)
class CanaryIdentity:
    """Who the heartbeats are from (reserved; see the module docstring)."""

    device_id: str = "candor-canary"
    subject_id: str = CANARY_SUBJECT
    org_id: str = CANARY_ORG


@dataclass(frozen=True)
class Sighting:
    """The newest canary event found in ClickHouse: event time and insert time (micros)."""

    ts: int
    landed_at: int


def heartbeat(identity: CanaryIdentity, now: int) -> dict[str, Any]:
    """The capture event of one heartbeat at wall-clock micros `now`."""
    return {
        "event_id": str(uuid.uuid4()),
        "org_id": identity.org_id,
        "subject_id": identity.subject_id,
        "device_id": identity.device_id,
        "seq": now,
        "ts": now,
        "received_ts": now,
        "app": {"app_name": CANARY_APP, "window_title": None, "url_host": None},
        "payload": {"type": "ActivityState", "state": "active"},
        "redactions": [],
        "consent_version": None,
    }


def age_seconds(now: int, newest: Sighting | None, started: int) -> float:
    """Age of the canary at micros `now`: since the newest landed heartbeat's
    event time, or since `started` when none has landed. Never negative."""
    since = started if newest is None else newest.ts
    return max(0.0, (now - since) / MICROS)


def transit_seconds(newest: Sighting) -> float:
    """Seconds from the heartbeat's event time to its insert into ClickHouse."""
    return max(0.0, (newest.landed_at - newest.ts) / MICROS)


NEWEST_SQL = (
    "SELECT count(), toUnixTimestamp64Micro(max(ts)), "
    "toUnixTimestamp64Micro(argMax(landed_at, ts)) FROM events "
    "WHERE org_id = {org:String} AND subject_id = {subject:String} "
    "AND device_id = {device:String}"
)


def find_newest(client: Any, identity: CanaryIdentity) -> Sighting | None:
    """The newest landed heartbeat of `identity` (None when none landed).

    Blocks on one ClickHouse query; raises the driver's errors."""
    rows = client.query(
        NEWEST_SQL,
        parameters={
            "org": identity.org_id,
            "subject": identity.subject_id,
            "device": identity.device_id,
        },
    ).result_rows
    count, ts, landed = rows[0]
    return None if count == 0 else Sighting(int(ts), int(landed))


def grant_canary_consent(settings: Settings, identity: CanaryIdentity) -> None:
    """Make sure the canary subject holds ``activity_metadata`` (blocks on Kafka)."""
    from backends.kafka.consent_registry import grant_scopes
    from privacy.consent import NothingToGrant

    with contextlib.suppress(NothingToGrant):  # already granted by an earlier run
        grant_scopes(
            settings,
            identity.subject_id,
            identity.org_id,
            ["activity_metadata"],
            by="candor-canary",
            reason="pipeline heartbeat",
        )


class Canary:
    """The shell: one producer, one ClickHouse client, the gauges."""

    def __init__(self, settings: Settings, identity: CanaryIdentity) -> None:
        from confluent_kafka import Producer

        from backends.clickhouse.connection import connect

        # Imported here: the metrics are registered only in a process that runs a
        # canary, not in every process whose CLI knows the command.
        from candor import canary_metrics

        self.metrics = canary_metrics

        self.settings = settings
        self.identity = identity
        self.topic = settings.kafka.topic(Topic.CAPTURE_EVENTS)
        self.producer = Producer(
            {
                **settings.kafka.client_config(),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 0,
                "message.timeout.ms": 10_000,
            }
        )
        self.client = connect(settings)
        self.started = time.time_ns() // 1000

    def beat(self) -> None:
        """Publish one heartbeat (acknowledgement counted asynchronously); never raises."""
        from schemas.codec import encode_event

        event = heartbeat(self.identity, time.time_ns() // 1000)

        def done(err: object, _msg: object) -> None:
            if err is None:
                self.metrics.SENT.inc()
            else:
                self.metrics.ERRORS.labels("publish").inc()
                log.warning("canary heartbeat not delivered: %s", err)

        try:
            self.producer.produce(
                self.topic,
                key=self.identity.device_id.encode(),
                value=encode_event(event),
                on_delivery=done,
            )
        except (BufferError, ValueError) as err:  # local queue full, or a bad topic
            self.metrics.ERRORS.labels("publish").inc()
            log.warning("canary heartbeat not queued: %s", err)
        self.producer.poll(0)

    def check(self) -> float | None:
        """Query ClickHouse and set the gauges; returns the age (None: query failed)."""
        try:
            newest = find_newest(self.client, self.identity)
        except Exception as err:  # any driver/network failure is a failed check, not a crash
            self.metrics.ERRORS.labels("check").inc()
            log.warning("canary check failed: %s", err)
            return None
        age = age_seconds(time.time_ns() // 1000, newest, self.started)
        self.metrics.AGE.set(age)
        if newest is not None:
            self.metrics.TRANSIT.set(transit_seconds(newest))
        return age

    def run(self, interval_s: float, stop: threading.Event, count: int = 0) -> int:
        """Beat and check every `interval_s` until `stop` (or `count` beats, 0 = forever).

        Blocks. Returns the number of heartbeats published; flushes the producer."""
        beats = 0
        while not stop.is_set() and (count == 0 or beats < count):
            self.beat()
            beats += 1
            self.producer.poll(min(1.0, interval_s / 2))
            self.check()
            stop.wait(interval_s)
        self.producer.flush(10)
        return beats


def _canary(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=settings.metrics_host)
    identity = CanaryIdentity(device_id=args.device)
    grant_canary_consent(settings, identity)
    beats = Canary(settings, identity).run(args.interval, stop, args.count)
    print(f"canary: {beats} heartbeats")
    return 0


def add_commands(subparsers: Any) -> dict[str, Handler]:
    """Add ``canary`` to `subparsers`; return ``{"canary": handler}``."""
    p = subparsers.add_parser(
        "canary", help="send a heartbeat through the pipeline every few seconds and export its age"
    )
    p.add_argument("--interval", type=float, default=5.0, help="seconds between heartbeats")
    p.add_argument(
        "--device",
        default="candor-canary",
        help="canary device id (one per canary process; org and subject are fixed)",
    )
    p.add_argument("--count", type=int, default=0, help="stop after N heartbeats (0: never)")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=9431,
        help="serve /metrics on 127.0.0.1 (default 9431; 0 disables)",
    )
    return {"canary": _canary}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``canary`` standalone (``python -m candor.canary canary ...``) until the
    lead wires `add_commands` into `candor.cli`."""
    from candor.settings import load_settings

    parser = argparse.ArgumentParser(prog="candor")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers = add_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return handlers[args.command](args, load_settings())


if __name__ == "__main__":
    sys.exit(main())
