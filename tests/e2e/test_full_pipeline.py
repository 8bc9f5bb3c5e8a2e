"""The whole pipeline on real servers: simulator → capture.events → `candor worker`
→ `candor sink --all` → ClickHouse → `candor export`.

Every accepted event is in `events` exactly once (by event_id); the sessions,
minutes and actions tables hold exactly what the stream published; nothing of
a subject without consent lands anywhere; the export holds exactly the actions
of subjects whose consent includes training use.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from backends.clickhouse.connection import connect
from candor.settings import Settings
from schemas.codec import decode
from sinks.export import export
from tests.e2e.scenario import Scenario
from tests.harness import CandorProcess, TopicReader, free_port, wait_until

TABLES_WITH_SUBJECTS = ("events", "sessions", "activity_minutes", "actions")


def _scalar(client: Any, sql: str, **params: Any) -> int:
    return int(client.query(sql, parameters=params).result_rows[0][0])


def test_simulator_to_clickhouse_exactly_once(pipeline_settings: Settings, tmp_path: Path) -> None:
    s = pipeline_settings
    sc = Scenario(s, seed=5)
    sc.send(sc.events)
    sc.send(sc.events[:20])  # client retries
    sc.send_bad()
    expected = sc.expected_clean
    logs = tmp_path / "logs"
    worker = CandorProcess(
        "worker",
        [
            "worker",
            "--metrics-port",
            str(free_port()),
            "--app-id",
            f"{s.kafka.topic_prefix}streams",
        ],
        s,
        logs,
    )
    sink = CandorProcess(
        "sink", ["sink", "--all", "--max-age", "0.5", "--metrics-port", str(free_port())], s, logs
    )
    sessions_topic = TopicReader(s, s.kafka.topic("activity.sessions"))
    minutes_topic = TopicReader(s, s.kafka.topic("activity.minutes"))
    actions_topic = TopicReader(s, s.kafka.topic("training.actions"))
    ch = connect(s)
    worker.start()
    sink.start()
    procs = (worker, sink)
    diag = lambda: "\n".join(p.tail() for p in procs)  # noqa: E731
    alive = lambda: all(p.running for p in procs)  # noqa: E731
    try:
        wait_until(
            lambda: _scalar(ch, "SELECT uniqExact(event_id) FROM events") >= len(expected),
            240,
            "every accepted event in ClickHouse",
            alive=alive,
            diag=diag,
        )

        def sessions_landed() -> bool:
            return _scalar(ch, "SELECT sum(event_ids_count) FROM sessions FINAL") >= len(expected)

        wait_until(
            sessions_landed, 180, "sessions of every device in ClickHouse", alive=alive, diag=diag
        )
        time.sleep(3)  # let the last minutes/actions batches land too

        # events: exactly once, and only consented subjects
        assert _scalar(ch, "SELECT count() FROM events FINAL") == len(expected)
        ids = {r[0] for r in ch.query("SELECT event_id FROM events").result_rows}
        assert ids == set(expected)
        for table in TABLES_WITH_SUBJECTS:
            assert (
                _scalar(
                    ch,
                    f"SELECT count() FROM {table} WHERE subject_id = {{s:String}}",
                    s=sc.no_consent_subject,
                )
                == 0
            ), table
        assert _scalar(ch, "SELECT count() FROM dead_letters FINAL") == len(sc.bad)

        # crypto-shredding: content travels encrypted per subject in Kafka and is
        # decrypted by the sinks for ClickHouse (where erasure deletes rows)
        clean = TopicReader(s, s.kafka.topic("capture.clean"))
        wait_until(
            lambda: (clean.poll(), len(clean.events()) >= len(expected))[1],
            60,
            "capture.clean read back",
        )
        batches = [decode(m.value())[1] for m in clean.records]
        clean.close()
        commands = [
            e["payload"]["command"]
            for b in batches
            for e in b["events"]
            if e["payload"]["type"] == "TerminalCommand"
        ]
        # sealed: in each CleanBatch's one ciphertext, not in its events
        assert commands and all(c == "" for c in commands)
        assert all(
            b["content"] is not None and b["key_id"]
            for b in batches
            if any(e["payload"]["type"] == "TerminalCommand" for e in b["events"])
        )
        assert _scalar(ch, "SELECT count() FROM events WHERE command LIKE 'enc1:%'") == 0
        assert _scalar(ch, "SELECT count() FROM events WHERE command != ''") == len(commands)
        assert _scalar(ch, "SELECT count() FROM events WHERE command LIKE '%<SECRET:%'") > 0

        # sessions/minutes/actions equal what the stream published
        for reader in (sessions_topic, minutes_topic, actions_topic):
            reader.poll(3.0)
            while reader.poll(1.0):
                pass
        published_sessions = {
            decode(m.value())[1]["session_id"]: decode(m.value())[1] for m in sessions_topic.records
        }
        rows = ch.query(
            "SELECT session_id, event_ids_count, keystrokes, clicks FROM sessions FINAL"
        ).result_rows
        assert {r[0]: (r[1], r[2], r[3]) for r in rows} == {
            k: (v["event_ids_count"], v["keystrokes"], v["clicks"])
            for k, v in published_sessions.items()
        }

        minutes: dict[tuple[str, str, int], int] = {}
        for m in minutes_topic.records:
            d = decode(m.value())[1]
            minutes[(d["subject_id"], d["device_id"], d["window_start"])] = d["events"]
        per_subject: dict[str, int] = defaultdict(int)
        for (subject, _, _), n in minutes.items():
            per_subject[subject] += n
        landed = {
            row[0]: row[1]
            for row in ch.query(
                "SELECT subject_id, sum(events) FROM activity_minutes FINAL GROUP BY subject_id"
            ).result_rows
        }
        assert {k: int(v) for k, v in landed.items()} == dict(per_subject)

        published_actions = {decode(m.value())[1]["action_id"] for m in actions_topic.records}
        landed_actions = {r[0] for r in ch.query("SELECT action_id FROM actions").result_rows}
        assert landed_actions == published_actions

        # training export: only subjects with training_use consent
        start = min(e["ts"] for e in sc.events)
        end = max(e["ts"] for e in sc.events) + 3_600_000_000
        result = export(s, start, end, tmp_path / "export")
        exported = pq.read_table(result.shards) if result.shards else None
        assert exported is not None
        exported_subjects = set(exported.column("subject_id").to_pylist())
        assert sc.metadata_only_subject not in exported_subjects
        assert sc.no_consent_subject not in exported_subjects
        want = _scalar(
            ch,
            "SELECT count() FROM actions FINAL WHERE subject_id != {s:String}",
            s=sc.metadata_only_subject,
        )
        assert result.actions == want
        print(
            f"events {len(expected)}, sessions {len(published_sessions)}, "
            f"actions {len(published_actions)}, exported {result.actions} actions of "
            f"{result.subjects} subjects"
        )
    finally:
        for p in procs:
            p.stop()
        for r in (sessions_topic, minutes_topic, actions_topic):
            r.close()
