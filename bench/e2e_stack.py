"""The pipeline of one bench/e2e.py run on the shared local stack: its own
topic prefix, ClickHouse database, home and master key; `candor worker` and
`candor sink --all` as child processes, their RSS and CPU sampled
(bench/usage.py); everything removed at the end. Also the bare path (today's single-event
records: consumer + decode + insert).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from e2e_load import Publisher, WireEvent
from environment import REPO, free_port
from pydantic import SecretStr
from usage import Sampler, server_pids
from yardstick import stock_decoder

from backends.clickhouse.connection import connect
from backends.kafka.consent_registry import grant_many
from backends.kafka.topics import create_topics
from candor.settings import Settings, replace
from candor.settings import child_env as candor_child_env
from privacy.consent import grant
from producers.simulator.simulator import SimulatedDevice
from sinks.migrate import migrate
from sinks.rows import EVENT_COLUMNS, event_row

SCOPES = [
    "activity_metadata",
    "keystroke_content",
    "screen_frames",
    "ide_content",
    "terminal_content",
    "training_use",
    "analytics",
    "window_titles",
]


def child_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child `candor` process build these settings."""
    return candor_child_env(settings, dict(os.environ))


class Child:
    """One `python -m candor.cli ...` child with its log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        logdir: Path,
    ) -> None:
        self.name, self.log = name, logdir / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "candor.cli", *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Pipeline:
    """One run's private pipeline. `setup()`, `start()`, `stop()`, `teardown()`."""

    def __init__(
        self, base: Settings, partitions: int, logdir: Path, sink_args: Sequence[str] = ()
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        self.sink_args = list(sink_args)
        self.servers = server_pids(base.home)
        self._home = tempfile.TemporaryDirectory(prefix="bench-e2e-")
        s = replace(
            base,
            home=Path(self._home.name),
            kafka={"topic_prefix": f"bench-e2e-{tag}.", "partitions": partitions},
            clickhouse={"database": f"candor_bench_e2e_{tag}"},
            # one key for every process
            privacy={"master_key": SecretStr(secrets.token_hex(32))},
        )
        self.settings, self.tag = s, tag
        self.logdir = logdir / tag
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []

    def setup(self, devices: list[SimulatedDevice], org_id: str) -> None:
        """Topics, tables, and consent with every scope (and data keys) for `devices`."""
        create_topics(self.settings)
        migrate(self.settings)
        now = time.time_ns() // 1000
        policies = [
            grant(None, SCOPES, "bench-e2e", now, subject_id=d.subject_id, org_id=org_id)
            for d in {d.subject_id: d for d in devices}.values()
        ]
        grant_many(self.settings, policies, "bench-e2e")

    def start(self) -> Sampler:
        """Start worker and sink; a sampler of their (this process's, the local
        stack's servers') RSS and CPU, and of the machine's busy cores."""
        env = child_env(self.settings)
        prefix = self.settings.kafka.topic_prefix
        self.sink_metrics = free_port()  # `sink_inserts` reads it
        self.worker_metrics = free_port()  # `worker_gc` reads it
        self.children = [
            Child(
                "worker",
                [
                    "worker",
                    "--metrics-port",
                    str(self.worker_metrics),
                    "--app-id",
                    f"{prefix}streams",
                    "--loglevel",
                    "warning",
                ],
                env,
                self.logdir,
            ),
            Child(
                "sink",
                [
                    "sink",
                    "--all",
                    "--max-age",
                    "0.5",
                    "--metrics-port",
                    str(self.sink_metrics),
                    *self.sink_args,
                ],
                env,
                self.logdir,
            ),
        ]
        pids = {c.name: c.pid for c in self.children}
        return Sampler({**pids, "bench": os.getpid(), **self.servers})

    def alive(self) -> bool:
        return all(c.running for c in self.children)

    def diag(self) -> str:
        tails = []
        for c in self.children:
            lines = c.log.read_text(errors="replace").splitlines()[-15:] if c.log.exists() else []
            tails.append(f"--- {c.log} ---\n" + "\n".join(lines))
        return "\n".join(tails)

    def stop(self) -> None:
        for c in self.children:
            c.stop()

    def teardown(self) -> None:
        """Drop the database and every topic of the prefix; forget the home."""
        self.stop()
        db = self.settings.clickhouse.database
        try:
            client = connect(self.settings, database="")
            client.command(f"DROP DATABASE IF EXISTS {db}")
            client.command(f"DROP DATABASE IF EXISTS analyst_{db}")
        except Exception as err:  # a leftover database is not worth losing the figures
            print(f"  (could not drop {db}: {err})", file=sys.stderr)
        admin = AdminClient(self.settings.kafka.client_config())
        prefix = self.settings.kafka.topic_prefix
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for future in admin.delete_topics(names, operation_timeout=30).values() if names else []:
            try:
                future.result(60)
            except Exception as err:
                print(f"  (could not delete a topic: {err})", file=sys.stderr)
        self._home.cleanup()


@dataclass(frozen=True, slots=True)
class BareResult:
    events: int
    seconds: float
    cpu_s: float  # this process's CPU seconds over the same span (every thread)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def bare_path(
    settings: Settings,
    events: list[WireEvent],
    partitions: int,
    batch: int = 10_000,
    timeout: float = 600,
) -> BareResult:
    """Today's per-event records through the bare path: `events` produced as
    single-event CaptureEvent records (the SDK's producer settings, untimed)
    to a topic of their own (``<prefix>bench.bare``), then a confluent-kafka
    consumer (own group) reads them, decodes them with stock fastavro
    (`yardstick.stock_decoder`, not Candor's decoder),
    `sinks.rows.event_row`, clickhouse-connect inserts of `batch` rows into a
    plain MergeTree copy of `events`. Timed from the first message received
    to the last insert acknowledged. Raises SystemExit when not all landed."""
    topic = f"{settings.kafka.topic_prefix}bench.bare"
    decode = stock_decoder()
    admin = AdminClient(settings.kafka.client_config())
    for future in admin.create_topics(
        [NewTopic(topic, partitions, settings.kafka.replicas())]
    ).values():
        future.result(60)
    Publisher(settings.kafka.bootstrap, topic).publish(events, None)
    total = len(events)
    client = connect(settings)
    client.command(
        "CREATE TABLE IF NOT EXISTS events_bare AS events ENGINE = MergeTree "
        "PARTITION BY toDate(ts) ORDER BY (org_id, subject_id, ts, event_id)"
    )
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"{settings.kafka.topic_prefix}bare",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, -2) for p in parts])
    columns = list(EVENT_COLUMNS)
    rows: list[Any] = []
    seen, first, cpu0 = 0, 0.0, 0.0
    deadline = time.monotonic() + timeout
    try:
        while seen < total and time.monotonic() < deadline:
            msgs = consumer.consume(batch, timeout=1.0)
            if msgs and not first:
                first, cpu0 = time.perf_counter(), time.process_time()
            for m in msgs:
                value = m.value()
                if m.error() is None and value is not None:
                    rows.append(event_row(decode(value)))
                    seen += 1
            while len(rows) >= batch or (seen >= total and rows):
                client.insert("events_bare", rows[:batch], column_names=columns)
                rows = rows[batch:]
        seconds, cpu = time.perf_counter() - first, time.process_time() - cpu0
    finally:
        consumer.close()
    landed = int(client.query("SELECT count() FROM events_bare").result_rows[0][0])
    client.command("DROP TABLE IF EXISTS events_bare")
    if seen < total or landed < total:
        raise SystemExit(f"bench: bare path read {seen}, landed {landed} of {total}")
    return BareResult(total, seconds, cpu)
