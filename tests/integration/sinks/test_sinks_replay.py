"""Derived tables are exact under a replayed output: a minute, a session or an
action the worker publishes again (killed between its output flush and its
changelog write, say) lands at a new offset with a new insert token, and must
replace, not add. Also: migration 0005 keeps the minutes landed before it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from backends.clickhouse.connection import connect
from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import Settings, replace
from privacy.content_keys import keep_content
from schemas.codec import encode
from sinks.consumer import SinkOptions, run_sink
from sinks.migrate import load_migrations, migrate, render
from tests.unit.sinks.sinks_samples import MINUTE, SESSION, action

pytestmark = pytest.mark.integration


@pytest.fixture
def db_settings(settings: Settings, unique: str) -> Iterator[Settings]:
    own = replace(settings, clickhouse={"database": f"candor_replay_{unique}"})
    yield own
    admin = connect(own, database="")
    admin.command(f"DROP DATABASE IF EXISTS {own.clickhouse.database}")
    admin.command(f"DROP DATABASE IF EXISTS analyst_{own.clickhouse.database}")


def _now_minute() -> int:
    now = time.time_ns() // 1000
    return now - now % 60_000_000


def _land_twice(
    s: Settings, unique: str, table: str, record: str, values: list[dict[str, Any]]
) -> None:
    """Publish each value twice (two offsets, as a replayed output arrives), then
    run the table's sink until it has read all of them."""
    topic = f"it.replay.{table}.{unique}"
    dlq = f"it.replay.dlq.{unique}"
    create_topics(
        s, [TopicSpec(topic, "subject", "delete", 1), TopicSpec(dlq, "device_id", "delete", 1)]
    )
    producer = Producer({**s.kafka.client_config(), "enable.idempotence": True, "acks": "all"})
    for _ in range(2):  # separate sends: separate offsets, separate sink batches
        for value in values:
            producer.produce(topic, key=value["subject_id"].encode(), value=encode(record, value))
        assert producer.flush(30) == 0
    stop = threading.Event()
    landed: list[int] = []

    def stop_when_read(batch: Any) -> None:
        landed.append(len(batch.items))
        if sum(landed) >= 2 * len(values):
            stop.set()

    stats = run_sink(
        s,
        topic,
        table,
        stop,
        SinkOptions(
            decrypt=keep_content,
            group=f"it-replay-{table}-{unique}",
            dlq_topic=dlq,
            max_age=0.2,
            max_rows=len(values),
            after_insert=stop_when_read,
        ),
    )
    assert stats.rows == 2 * len(values) and stats.dead_letters == 0


def test_a_minute_sent_twice_is_counted_once(db_settings: Settings, unique: str) -> None:
    s = db_settings
    migrate(s)
    minute = _now_minute()
    values = [
        dict(
            MINUTE,
            subject_id="s-rep",
            device_id=d,
            window_start=minute,
            keys=10,
            events=25,
            app_seconds={"code": 30.0},
        )
        for d in ("d1", "d2")
    ]
    _land_twice(s, unique, "activity_minutes", "MinuteAggregate", values)
    rows = (
        connect(s)
        .query(
            "SELECT sum(keys), sum(events), sumMap(app_seconds) FROM activity_minutes "
            "WHERE subject_id = 's-rep'"
        )
        .result_rows
    )
    # two devices in one minute add up; the replay of each replaces itself
    assert rows == [(20, 50, {"code": 60.0})]
    view = (
        connect(s)
        .query("SELECT keys, events FROM activity_minutes WHERE subject_id = 's-rep'")
        .result_rows
    )
    assert view == [(20, 50)]  # one row per subject and minute, as before


def test_a_session_sent_twice_is_one_session(db_settings: Settings, unique: str) -> None:
    s = db_settings
    migrate(s)
    start = time.time_ns() // 1000 - 120_000_000
    session = dict(
        SESSION,
        session_id=f"s-rep:d1:{start}",
        subject_id="s-rep",
        start_ts=start,
        end_ts=start + 60_000_000,
    )
    _land_twice(s, unique, "sessions", "Session", [session])
    rows = (
        connect(s)
        .query(
            "SELECT count(), sum(keystrokes), sum(active_seconds) FROM sessions FINAL "
            "WHERE subject_id = 's-rep'"
        )
        .result_rows
    )
    assert rows == [(1, SESSION["keystrokes"], SESSION["active_seconds"])]


def test_an_action_sent_twice_is_one_action(db_settings: Settings, unique: str) -> None:
    s = db_settings
    migrate(s)
    start = time.time_ns() // 1000 - 60_000_000
    acts = [
        action(kind, subject="s-rep", start=start + n * 1_000_000, n=n)
        for n, kind in enumerate(("typing", "click", "command"))
    ]
    _land_twice(s, unique, "actions", "Action", acts)
    rows = (
        connect(s)
        .query("SELECT count(), uniqExact(action_id) FROM actions FINAL WHERE subject_id = 's-rep'")
        .result_rows
    )
    assert rows == [(3, 3)]


def test_migration_0005_keeps_the_minutes_landed_before_it(db_settings: Settings) -> None:
    s = db_settings
    admin = connect(s, database="")
    admin.command(f"CREATE DATABASE {s.clickhouse.database}")
    client = connect(s)
    # the schema as it was: 0001-0004 applied and recorded
    before = [m for m in load_migrations() if m.version < 5]
    for m in before:
        for statement in render(m.template, s):
            client.command(statement)
    minute = _now_minute()
    rows = [
        ["org1", subj, minute - k * 60_000_000, 7, 1, 0, 2.5, 40.0, {"code": 40.0}, 9]
        for subj in ("s1", "s2")
        for k in range(3)
    ]
    columns = [
        "org_id",
        "subject_id",
        "window_start",
        "keys",
        "clicks",
        "scrolls",
        "mouse_distance_px",
        "active_seconds",
        "app_seconds",
        "events",
    ]
    client.insert("activity_minutes", rows, column_names=columns)
    client.insert("activity_minutes", rows[:1], column_names=columns)  # summed: 14 keys
    before_sql = (
        "SELECT subject_id, window_start, sum(keys), sum(events), sumMap(app_seconds) "
        "FROM activity_minutes GROUP BY subject_id, window_start "
        "ORDER BY subject_id, window_start"
    )
    expected = client.query(before_sql).result_rows
    # record 0001-0004 as applied, then let migrate() take the rest
    client.command(
        render(
            "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, "
            "name String, checksum String, applied_at DateTime64(6, 'UTC') "
            "DEFAULT now64(6)) ENGINE = MergeTree ORDER BY version",
            s,
        )[0]
    )
    client.insert(
        "schema_migrations",
        [[m.version, m.name, m.checksum] for m in before],
        column_names=["version", "name", "checksum"],
    )
    applied = migrate(s)
    assert 5 in applied
    assert client.query(before_sql).result_rows == expected
    engine = client.query(
        "SELECT engine FROM system.tables WHERE database = currentDatabase() "
        "AND name = 'activity_minutes'"
    ).result_rows
    assert engine == [("View",)]
    # the analyst views built on activity_minutes still read it
    assert client.query("SELECT count() FROM daily_app_time").result_rows[0][0] > 0


def test_a_topic_created_anew_lands_while_clickhouse_keeps_its_tokens(
    db_settings: Settings, unique: str
) -> None:
    # A rebuilt Kafka cluster (or a deleted and recreated topic) restarts offsets
    # at 0 while ClickHouse remembers the last insert tokens: the new topic's
    # first batch has the same offsets as the old one's and must still land.
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    from schemas.codec import encode_event
    from tests.unit.sinks.sinks_samples import event

    s = db_settings
    migrate(s)
    topic, dlq = f"it.reborn.{unique}", f"it.reborn.dlq.{unique}"
    admin = AdminClient(dict(s.kafka.client_config()))
    now = time.time_ns() // 1000

    def land(run: int) -> int:
        create_topics(
            s,
            [TopicSpec(topic, "device_id", "delete", 1), TopicSpec(dlq, "device_id", "delete", 1)],
        )
        producer = Producer({**s.kafka.client_config(), "enable.idempotence": True})
        for n in range(10):
            e = event("KeyInput", ts=now - n * 1000, seq=run * 100 + n, subject=f"s-reborn-{run}")
            producer.produce(topic, key=b"d1", value=encode_event(e))
        assert producer.flush(30) == 0
        stop = threading.Event()
        stats = run_sink(
            s,
            topic,
            "events",
            stop,
            SinkOptions(
                decrypt=keep_content,
                group=f"it-reborn-{unique}-{run}",
                dlq_topic=dlq,
                max_age=60,
                max_rows=10,  # one batch: offsets 0-9
                after_insert=lambda _batch: stop.set(),
            ),
        )
        return stats.rows

    assert land(1) == 10
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result()
    deadline = time.monotonic() + 60
    while True:  # the broker may still be deleting the old topic
        try:
            admin.create_topics([NewTopic(topic, s.kafka.partitions, 1)])[topic].result()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert land(2) == 10  # same key, same partition, offsets 0-9 again
    rows = (
        connect(s)
        .query("SELECT subject_id, count() FROM events GROUP BY subject_id ORDER BY subject_id")
        .result_rows
    )
    assert rows == [("s-reborn-1", 10), ("s-reborn-2", 10)]


def test_two_refused_events_of_one_batch_are_two_dead_letters(
    db_settings: Settings, unique: str
) -> None:
    # One DeviceBatch record, two of its events refused for the same reason: two
    # rows (0001's key had them replace each other), and a replay of either
    # (the worker re-publishing after a crash) still one row each.
    s = db_settings
    migrate(s)
    dlq = f"it.dl.{unique}"
    create_topics(s, [TopicSpec(dlq, "device_id", "delete", 1)])
    producer = Producer({**s.kafka.client_config(), "enable.idempotence": True})
    base = [
        ("reason", b"invalid_field"),
        ("error", b"bad"),
        ("original_topic", b"capture.events"),
        ("original_partition", b"3"),
        ("original_offset", b"41"),
        ("batch_id", b"b1"),
    ]
    for index in (b"1", b"4", b"1"):  # the last one a replay
        producer.produce(dlq, key=b"d1", value=b"event", headers=[*base, ("event_index", index)])
    assert producer.flush(30) == 0
    stop = threading.Event()
    stats = run_sink(
        s,
        dlq,
        "dead_letters",
        stop,
        SinkOptions(
            decrypt=keep_content,
            group=f"it-dl-{unique}",
            dlq_topic=dlq,
            max_age=60,
            max_rows=3,
            after_insert=lambda _batch: stop.set(),
        ),
    )
    assert stats.rows == 3
    rows = (
        connect(s)
        .query("SELECT event_number FROM dead_letters FINAL ORDER BY event_number")
        .result_rows
    )
    assert rows == [(2,), (5,)]
