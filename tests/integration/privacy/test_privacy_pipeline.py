"""(a) and (b) through a real `candor worker` and real sinks.

(a) a person without consent leaves no row in any table and is in no export;
(b) after `candor consent revoke`, none of the person's later events land.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import KeyView
from candor.settings import Settings
from producers.sdk.kafka_transport import producer_config
from producers.simulator.simulator import Simulator
from schemas.codec import encode_event
from sinks.export import export
from tests.harness import CandorProcess, free_port, wait_until
from tests.integration.privacy.pipeline import Cli

pytestmark = pytest.mark.integration

ALL = (
    "activity_metadata,keystroke_content,screen_frames,ide_content,terminal_content,"
    "training_use,analytics"
)
TABLES = ("events", "sessions", "activity_minutes", "actions")


def now_micros() -> int:
    return time.time_ns() // 1000


def send(s: Settings, events: list[dict[str, Any]]) -> None:
    producer = Producer(producer_config(s.kafka.bootstrap))
    for e in events:
        producer.produce(s.kafka.topic("capture.events"), key=e["device_id"], value=encode_event(e))
        producer.poll(0)
    assert producer.flush(30) == 0


def rows(s: Settings, table: str, subject: str, where: str = "1") -> int:
    return int(
        connect(s)
        .query(
            f"SELECT count() FROM {table} WHERE subject_id = {{s:String}} AND {where}",
            parameters={"s": subject},
        )
        .result_rows[0][0]
    )


def test_no_consent_never_lands_and_revocation_stops_new_events(
    private_settings: Settings, cli: Cli, sinks: KeyView, tmp_path: Path
) -> None:
    s = private_settings
    sim = Simulator(3, seed=5, start_ts=now_micros() - 100_000_000)
    full, none, revoked = (d.subject_id for d in sim.devices)
    for subject in (full, revoked):
        assert (
            cli("consent", "grant", "--subject", subject, "--org", "org-sim", "--scopes", ALL) == 0
        )
    events = list(sim.events(80))
    split = sim.start_ts + 40_000_000
    first = [e for e in events if e["ts"] < split]
    second = [e for e in events if e["ts"] >= split]
    assert any(e["subject_id"] == revoked for e in second)
    port = free_port()
    worker = CandorProcess(
        "worker",
        ["worker", "--metrics-port", str(port), "--app-id", f"{s.kafka.topic_prefix}streams"],
        s,
        tmp_path / "logs",
    )
    worker.start()
    try:
        send(s, first)
        n_first = {x: sum(1 for e in first if e["subject_id"] == x) for x in (full, revoked)}
        wait_until(
            lambda: all(rows(s, "events", x) >= n for x, n in n_first.items()),
            120,
            "first half landed",
            alive=lambda: worker.running,
            diag=worker.tail,
        )
        assert cli("consent", "revoke", "--subject", revoked, "--reason", "left the team") == 0
        time.sleep(3)  # revocation is effective within seconds
        send(s, second)
        n_full = sum(1 for e in events if e["subject_id"] == full)
        wait_until(
            lambda: rows(s, "events", full) >= n_full,
            120,
            "second half landed",
            alive=lambda: worker.running,
            diag=worker.tail,
        )
        wait_until(
            lambda: rows(s, "sessions", full) >= 1 and rows(s, "actions", full) >= 1,
            90,
            "sessions and actions",
            alive=lambda: worker.running,
            diag=worker.tail,
        )
        time.sleep(3)  # whatever else was in flight lands now
        # (b) nothing captured after the revocation landed
        after = f"ts >= fromUnixTimestamp64Micro({split}, 'UTC')"
        assert rows(s, "events", revoked, after) == 0
        assert rows(s, "events", revoked) == n_first[revoked]
        # (a) the person without consent is nowhere
        for table in TABLES:
            assert rows(s, table, none) == 0, table
        assert rows(s, "consent_ledger", none) == 0
        day = timedelta(days=1)
        result = export(
            s, datetime.now(UTC) - day, datetime.now(UTC) + day, tmp_path / "x", fmt="jsonl"
        )
        subjects = (
            connect(s)
            .query(
                "SELECT subjects FROM exports WHERE export_id = {e:String}",
                parameters={"e": result.export_id},
            )
            .result_rows[0][0]
        )
        assert subjects == [full]  # not the unconsented one, not the revoked one
    finally:
        worker.stop()
