"""faust-streaming on real Kafka: a worker counts a topic into a Table, and a
restarted worker recovers the table from its changelog before going on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import Settings, replace

REPO = Path(__file__).resolve().parents[3]
KEYS = [f"word-{i}" for i in range(20)]


class Worker:
    def __init__(self, settings: Settings, topic: str, app_id: str, datadir: Path) -> None:
        self.args = [
            sys.executable,
            "-m",
            "tests.integration.libraries.faust_counter",
            settings.kafka.bootstrap,
            topic,
            app_id,
            str(datadir),
        ]
        self.log = datadir / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def _produce(settings: Settings, topic: str, start: int, n: int) -> dict[str, int]:
    producer = Producer(
        {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    sent: dict[str, int] = {}
    for i in range(start, start + n):
        key = KEYS[(i * 7) % len(KEYS)]
        sent[key] = sent.get(key, 0) + 1
        producer.produce(topic, key=key.encode(), value=str(i).encode())
        producer.poll(0)
    assert producer.flush(30) == 0
    return sent


def _changelog_counts(
    settings: Settings, changelog: str, want: dict[str, int], timeout: float, worker: Worker
) -> dict[str, int]:
    """Read the table's changelog (last value per key) until it equals `want` or time runs out."""
    consumer = Consumer(
        {
            **settings.kafka.client_config(),
            "group.id": f"reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([changelog])
    state: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and state != want:
            assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
            for m in consumer.consume(500, timeout=0.5):
                error = m.error()
                if error is not None:
                    # the worker creates the changelog topic: until then it is unknown
                    assert error.code() in (
                        KafkaError._PARTITION_EOF,
                        KafkaError.UNKNOWN_TOPIC_OR_PART,
                    ), error
                    continue
                state[json.loads(m.key() or b"null")] = json.loads(m.value() or b"{}")["n"]
    finally:
        consumer.close()
    return state


@pytest.fixture
def worker(settings: Settings, unique: str, tmp_path: Path) -> Iterator[tuple[Worker, str, str]]:
    topic = f"it.faust.{unique}"
    s = replace(settings, kafka={"partitions": 4})
    create_topics(s, [TopicSpec(topic, "word", "delete", 1)])
    app_id = f"it-counter-{unique}"
    w = Worker(settings, topic, app_id, tmp_path / "faust")
    yield w, topic, f"{app_id}-counts-changelog"
    w.stop()


def test_table_counts_and_recovery_from_changelog(
    settings: Settings, worker: tuple[Worker, str, str]
) -> None:
    w, topic, changelog = worker
    sent = _produce(settings, topic, 0, 2000)
    w.start()
    counts = _changelog_counts(settings, changelog, sent, timeout=120, worker=w)
    assert counts == sent, w.tail()

    w.stop()
    assert w.proc is not None and w.proc.returncode == 0, w.tail()

    more = _produce(settings, topic, 2000, 1000)
    total = {k: sent.get(k, 0) + more.get(k, 0) for k in KEYS}
    w.start()  # memory store: the table must come back from the changelog
    counts = _changelog_counts(settings, changelog, total, timeout=120, worker=w)
    assert counts == total, w.tail()
