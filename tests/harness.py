"""Helpers shared by e2e and reliability tests: Candor processes started as a
user would start them (`candor worker`, `candor sink`), topics read back whole,
metrics scraped from a process's /metrics endpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from candor.settings import Settings, replace
from candor.settings import child_env as candor_child_env
from candor.stack import free_port as free_port  # the tests import it from here

REPO = Path(__file__).resolve().parent.parent


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child `candor` process build these settings."""
    return candor_child_env(settings, dict(os.environ))


class CandorProcess:
    """One `candor ...` child process with its log file."""

    def __init__(self, name: str, args: list[str], settings: Settings, logdir: Path) -> None:
        self.name = name
        self.args = [sys.executable, "-m", "candor.cli", *args]
        self.env = settings_env(settings)
        logdir.mkdir(parents=True, exist_ok=True)
        self.log = logdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CandorProcess:
        with self.log.open("ab") as out:
            out.write(f"---- start {time.strftime('%H:%M:%S')}\n".encode())
            self.proc = subprocess.Popen(
                self.args, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").splitlines()
        return f"--- {self.log} ---\n" + "\n".join(text[-lines:])


def kill9_pidfile(pidfile: Path) -> None:
    """kill -9 the server whose PID file this is, wait until it is gone, remove the file."""
    pid = int(pidfile.read_text().strip())
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    pidfile.unlink(missing_ok=True)


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], bool] | None = None,
    diag: Callable[[], str] = str,
    interval: float = 0.5,
) -> None:
    """Poll `check` until it holds; fail with `what` (and `diag()`) on timeout or
    when `alive()` says the process under test died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise AssertionError(f"process died while waiting for {what}\n{diag()}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{diag()}")


class TopicReader:
    """Reads a topic from the beginning, incrementally, without a consumer group."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = Consumer(
            {
                **settings.kafka.client_config(),
                "group.id": "unused",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        md = self.consumer.list_topics(topic, timeout=10)
        parts = md.topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, -2) for p in parts])
        self.records: list[Any] = []

    def poll(self, max_s: float = 1.0) -> list[Any]:
        """Read what is available now (up to ~max_s); returns the new records."""
        new = []
        deadline = time.monotonic() + max_s
        while time.monotonic() < deadline:
            msgs = self.consumer.consume(5000, timeout=0.2)
            if not msgs:
                break
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        raise AssertionError(f"read error: {err}")
                    continue
                new.append(m)
        self.records.extend(new)
        return new

    def events(self) -> list[dict[str, Any]]:
        """The capture events the records read so far hold (capture.clean: each
        CleanBatch's events, a single CaptureEvent as itself), in record order;
        sealed content stays as the records hold it."""
        return clean_events(self.records)

    def close(self) -> None:
        self.consumer.close()


def clean_events(records: Iterable[Any]) -> list[dict[str, Any]]:
    """The events of capture.clean ``records`` (Kafka messages): a CleanBatch's
    events in order, a CaptureEvent (the format before batches) as itself."""
    from schemas.codec import decode

    out: list[dict[str, Any]] = []
    for m in records:
        name, datum = decode(m.value())
        out.extend(datum["events"] if name == "CleanBatch" else [datum])
    return out


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from a process's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def metric(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


class SinkThreads:
    """Every sink of `sinks.routes.ROUTES` (the dead letters' only when asked) in
    threads of this process, decrypting with a live `KeyView` of `master`.
    `close()` stops them and the view."""

    def __init__(
        self, settings: Settings, master: bytes, actor: str, *, dead_letters: bool = False
    ) -> None:
        from backends.clickhouse.connection import connect
        from backends.clickhouse.key_store import KeyView
        from privacy.content_keys import decrypt_record
        from sinks.consumer import SinkOptions, run_sink
        from sinks.routes import ROUTES

        s = settings
        self.view = KeyView(lambda: connect(s), master, interval=1.0, actor=actor)
        self.view.start()
        self.stop = threading.Event()
        view = self.view

        def options(table: str) -> SinkOptions:
            return SinkOptions(
                max_rows=1000,
                max_age=0.3,
                group=f"{s.kafka.topic_prefix}{table}",
                dlq_topic=s.kafka.topic("capture.dlq"),
                decrypt=lambda r, d: decrypt_record(r, d, view),
            )

        self.threads = [
            threading.Thread(
                target=run_sink,
                daemon=True,
                args=(s, s.kafka.topic(r.topic), r.table, self.stop, options(r.table)),
            )
            for r in ROUTES.values()
            if dead_letters or r.table != "dead_letters"
        ]
        for t in self.threads:
            t.start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        self.view.stop()


def private_pipeline(settings: Settings, unique: str, home: Path, prefix: str = "e2e") -> Settings:
    """A copy of `settings` for one test's pipeline on the shared servers: topics
    and consumer groups under ``<prefix>-<unique>.``, its own database, 4
    partitions, session/minute/action gaps short enough to close within a
    test; its topics created and its database migrated (workers read subjects'
    data keys from ClickHouse). `drop_pipeline` removes the databases."""
    from backends.kafka.topics import create_topics
    from sinks.migrate import migrate

    s = replace(
        settings,
        home=home,
        kafka={"topic_prefix": f"{prefix}-{unique}.", "partitions": 4},
        clickhouse={"database": f"candor_{prefix}_{unique}"},
        streams={
            "session_gap_s": 20,
            "grace_s": 2,
            "minute_quiet_s": 5,
            "action_quiet_s": 2,
            "timer_interval_s": 1,
            "batch_within_s": 0.2,
        },
    )
    create_topics(s)
    migrate(s)
    return s


def drop_pipeline(settings: Settings) -> None:
    """Drop the databases of a `private_pipeline`."""
    from backends.clickhouse.connection import connect

    admin = connect(settings, database="")
    admin.command(f"DROP DATABASE IF EXISTS {settings.clickhouse.database}")
    admin.command(f"DROP DATABASE IF EXISTS analyst_{settings.clickhouse.database}")
