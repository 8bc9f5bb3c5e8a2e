"""The sink against real Kafka and ClickHouse: migrations, exactly-once after kill -9, DLQ."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from backends.clickhouse.connection import connect
from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import Settings, replace
from privacy.content_keys import keep_content
from schemas import codec
from sinks.consumer import SinkOptions, SinkStats, run_sink
from sinks.migrate import load_migrations, migrate
from sinks.rows import decode_headers
from tests.unit.sinks.sinks_samples import PAYLOADS, event

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
PARTITIONS = 4
N = 3_000


@pytest.fixture
def db_settings(settings: Settings, unique: str) -> Iterator[Settings]:
    """Settings with a database of this test, migrated; dropped afterwards."""
    own = replace(
        settings,
        clickhouse={"database": f"candor_it_{unique}"},
        kafka={"partitions": PARTITIONS},
    )
    yield own
    connect(own, database="").command(f"DROP DATABASE IF EXISTS {own.clickhouse.database}")


def _topics(settings: Settings, unique: str) -> tuple[str, str]:
    topic, dlq = f"it.sink.clean.{unique}", f"it.sink.dlq.{unique}"
    create_topics(
        settings,
        [TopicSpec(topic, "device_id", "delete", 1), TopicSpec(dlq, "device_id", "delete", 1)],
    )
    return topic, dlq


def _produce(settings: Settings, topic: str, values: list[tuple[str, bytes]]) -> None:
    producer = Producer(
        {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )
    for key, value in values:
        producer.produce(topic, key=key.encode(), value=value)
        producer.poll(0)
    assert producer.flush(30) == 0


def _now_events(n: int) -> list[dict[str, Any]]:
    now = int(time.time() * 1_000_000)
    kinds = sorted(PAYLOADS)
    return [
        event(
            kinds[i % len(kinds)],
            ts=now - i * 1_000,
            seq=i,
            device=f"d{i % 16}",
            subject=f"s{i % 8}",
        )
        for i in range(n)
    ]


def _count(settings: Settings, sql: str) -> int:
    return int(connect(settings).query(sql).result_rows[0][0])


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


class _Background:
    """run_sink in a thread of this process."""

    def __init__(self, settings: Settings, topic: str, table: str, options: SinkOptions) -> None:
        self.stop = threading.Event()
        self.result: list[SinkStats | BaseException] = []

        def target() -> None:
            try:
                self.result.append(run_sink(settings, topic, table, self.stop, options))
            except BaseException as err:  # surfaced by finish()
                self.result.append(err)

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def finish(self) -> SinkStats:
        self.stop.set()
        self.thread.join(60)
        assert self.result, "sink thread did not stop"
        outcome = self.result[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def test_migrate_is_idempotent_and_records_versions(db_settings: Settings) -> None:
    versions = [m.version for m in load_migrations()]
    assert migrate(db_settings) == versions
    assert migrate(db_settings) == []
    client = connect(db_settings)
    assert (
        sorted(v for (v,) in client.query("SELECT version FROM schema_migrations").result_rows)
        == versions
    )
    tables = {t for (t,) in client.query("SHOW TABLES").result_rows}
    assert {
        "events",
        "sessions",
        "activity_minutes",
        "actions",
        "dead_letters",
        "consent_ledger",
        "exports",
        "audit_log",
        "daily_app_time",
        "daily_sessions",
        "focus_switches",
        "commands_run",
    } <= tables
    ttl = client.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND name = 'events'"
    ).result_rows[0][0]
    assert f"toIntervalDay({db_settings.retention.clickhouse_events_days})" in ttl


def test_sink_killed_between_insert_and_commit_lands_every_event_once(
    db_settings: Settings, unique: str, tmp_path: Path
) -> None:
    migrate(db_settings)
    topic, dlq = _topics(db_settings, unique)
    events = _now_events(N)
    _produce(db_settings, topic, [(e["device_id"], codec.encode_event(e)) for e in events])
    group = f"it-sink-{unique}"

    marker = tmp_path / "inserted"
    env = {
        **os.environ,
        "CANDOR_KAFKA_BOOTSTRAP": db_settings.kafka.bootstrap,
        "CANDOR_CLICKHOUSE_URL": db_settings.clickhouse.url,
        "CANDOR_CLICKHOUSE__DATABASE": db_settings.clickhouse.database,
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("sink_process.py")),
            topic,
            "events",
            group,
            dlq,
            str(marker),
        ],
        env=env,
        cwd=REPO,
    )
    try:
        assert _wait(marker.exists, 60), "the sink never inserted a batch"
        inserted = _count(db_settings, "SELECT count() FROM events")
        assert inserted > 0  # the first batch is in ClickHouse, its offsets are not committed
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)

    sink = _Background(
        db_settings,
        topic,
        "events",
        SinkOptions(decrypt=keep_content, group=group, dlq_topic=dlq, max_age=0.5),
    )
    try:
        assert _wait(lambda: _count(db_settings, "SELECT count() FROM events") >= N, 90)
        time.sleep(2)  # anything more would be a duplicate
    finally:
        stats = sink.finish()
    totals = (
        connect(db_settings).query("SELECT count(), uniqExact(event_id) FROM events").result_rows[0]
    )
    assert totals == (N, N)
    assert stats.dead_letters == 0
    # the replayed batch (same token) was dropped by ClickHouse, not re-counted in the table
    assert {e["event_id"] for e in events} == {
        r[0] for r in connect(db_settings).query("SELECT event_id FROM events").result_rows
    }


def test_bad_rows_go_to_the_dlq_with_the_reason_and_the_rest_lands(
    db_settings: Settings, unique: str
) -> None:
    migrate(db_settings)
    topic, dlq = _topics(db_settings, unique)
    good = _now_events(50)
    broken_clock = event("Scroll", ts=946_684_800_000_000 - 1, seq=999)  # 1999-12-31: CHECK fails
    values = [(e["device_id"], codec.encode_event(e)) for e in good]
    values.insert(17, ("d1", b"not avro at all"))
    values.insert(30, ("d1", codec.encode_event(broken_clock)))
    _produce(db_settings, topic, values)

    sink = _Background(
        db_settings,
        topic,
        "events",
        SinkOptions(decrypt=keep_content, group=f"it-sink-{unique}", dlq_topic=dlq, max_age=0.5),
    )
    try:
        assert _wait(lambda: _count(db_settings, "SELECT count() FROM events") >= 50, 60)
    finally:
        stats = sink.finish()
    assert _count(db_settings, "SELECT count() FROM events") == 50
    assert stats.by_reason == {"undecodable": 1, "rejected_by_clickhouse": 1}

    consumer = Consumer(
        {
            **db_settings.kafka.client_config(),
            "group.id": f"it-dlq-{unique}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([dlq])
    letters: list[dict[str, str]] = []
    deadline = time.monotonic() + 30
    while len(letters) < 2 and time.monotonic() < deadline:
        for m in consumer.consume(10, timeout=0.5):
            if m.error() is None:
                letters.append(decode_headers(m.headers()))
    consumer.close()
    by_reason = {h["reason"]: h for h in letters}
    assert set(by_reason) == {"undecodable", "rejected_by_clickhouse"}
    assert "VIOLATED_CONSTRAINT" in by_reason["rejected_by_clickhouse"]["error"]
    assert by_reason["undecodable"]["original_topic"] == topic

    # The DLQ topic lands in dead_letters with the server's error.
    dl = _Background(
        db_settings,
        dlq,
        "dead_letters",
        SinkOptions(decrypt=keep_content, group=f"it-dl-{unique}", dlq_topic=dlq, max_age=0.5),
    )
    try:
        assert _wait(lambda: _count(db_settings, "SELECT count() FROM dead_letters") >= 2, 60)
    finally:
        dl.finish()
    rows = (
        connect(db_settings)
        .query("SELECT reason, error, original_topic FROM dead_letters FINAL ORDER BY reason")
        .result_rows
    )
    assert [r[0] for r in rows] == ["rejected_by_clickhouse", "undecodable"]
    assert "ts_after_2000" in rows[0][1] and rows[0][2] == topic
