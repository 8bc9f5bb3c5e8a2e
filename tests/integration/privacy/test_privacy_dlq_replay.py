"""(8) An event dead-lettered for an unknown schema fingerprint lands exactly once
after the new schema version is deployed and the dead letters are replayed -
also when the replay is run twice; and (1) content that looks like a token
(``enc1:x:secret``) travels encrypted and lands as typed, through a real worker.

A worker deployed before CaptureEvent's newest version (old_schema_worker.py)
dead-letters a newer client's event as ``unknown_schema``; the DLQ sink lands
it in ``dead_letters``; `candor dlq list/show` find it; the current worker is
deployed; `candor dlq replay` sends it back to ``capture.events``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import KeyView
from candor.dlq_cli import add_commands
from candor.settings import Settings
from privacy.content_keys import decrypt_record
from schemas.codec import decode, encode_event
from tests.harness import (
    CandorProcess,
    SinkThreads,
    TopicReader,
    clean_events,
    free_port,
    wait_until,
)
from tests.integration.privacy.pipeline import MASTER, Cli

pytestmark = pytest.mark.integration

LOOKALIKE = "enc1:x:secret"


@pytest.fixture
def all_sinks(private_settings: Settings) -> Iterator[KeyView]:
    """Every sink, the dead letters' included, in threads of this process."""
    running = SinkThreads(private_settings, MASTER, "test-sink", dead_letters=True)
    yield running.view
    running.close()


def dlq(s: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    handlers = add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dlq", *argv])
    capsys.readouterr()
    code = handlers["dlq"](args, s)
    return code, capsys.readouterr().out


def send(s: Settings, *events: dict[str, Any]) -> None:
    producer = Producer({"bootstrap.servers": s.kafka.bootstrap})
    for e in events:
        producer.produce(s.kafka.topic("capture.events"), key=e["device_id"], value=encode_event(e))
    assert producer.flush(30) == 0


def event(subject: str, device: str, seq: int, text: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "org_id": "org-r",
        "subject_id": subject,
        "device_id": device,
        "seq": seq,
        "ts": time.time_ns() // 1000 - 5_000_000,
        "received_ts": None,
        "app": {"app_name": "Code", "window_title": LOOKALIKE, "url_host": None},
        "payload": {
            "type": "KeyInput",
            "key": None,
            "text": text,
            "modifiers": [],
            "is_secure_field": False,
            "count": len(text),
        },
        "redactions": [],
        "consent_version": None,
        "client_version": "2.0",
    }


def landed(s: Settings, event_id: str, final: bool = False) -> int:
    return int(
        connect(s)
        .query(
            f"SELECT count() FROM events {'FINAL' if final else ''} WHERE event_id = {{e:String}}",
            parameters={"e": event_id},
        )
        .result_rows[0][0]
    )


def test_unknown_schema_dead_letter_lands_once_after_deploy_and_replay(
    private_settings: Settings,
    cli: Cli,
    all_sinks: KeyView,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = private_settings
    subject = "replay-person"
    assert (
        cli(
            "consent",
            "grant",
            "--subject",
            subject,
            "--org",
            "org-r",
            "--scopes",
            "activity_metadata,keystroke_content,window_titles,analytics",
        )
        == 0
    )
    wait_until(lambda: all_sinks.live(subject) is not None, 30, "key visible to the sinks")
    app_id = f"{s.kafka.topic_prefix}streams"
    logs = tmp_path / "logs"
    old = CandorProcess(
        "old-worker", ["worker", "--metrics-port", "0", "--app-id", app_id], s, logs
    )
    old.args = [sys.executable, "-m", "tests.integration.privacy.old_schema_worker", *old.args[3:]]
    old.start()
    newer = event(subject, "dev-r1", 1, LOOKALIKE)
    try:
        send(s, newer)

        def found() -> list[Any]:
            return list(
                connect(s)
                .query(
                    "SELECT dlq_partition, dlq_offset FROM dead_letters FINAL "
                    "WHERE reason = 'unknown_schema'"
                )
                .result_rows
            )

        wait_until(
            lambda: len(found()) == 1,
            120,
            "the newer event dead-lettered",
            alive=lambda: old.running,
            diag=old.tail,
        )
    finally:
        assert old.stop() == 0, old.tail()
    ((part, offset),) = found()
    dead_id = f"{part}:{offset}"

    code, out = dlq(s, capsys, "list", "--reason", "unknown_schema", "--topic", "capture.events")
    assert code == 0 and out.startswith(dead_id) and "unknown_schema" in out
    code, out = dlq(s, capsys, "show", dead_id)
    shown = json.loads(out)
    assert shown["reason"] == "unknown_schema" and "not in the registry" in shown["error"]
    assert shown["original_topic"] == s.kafka.topic("capture.events")
    assert LOOKALIKE not in out  # metadata only

    worker = CandorProcess(
        "worker", ["worker", "--metrics-port", str(free_port()), "--app-id", app_id], s, logs
    )
    worker.start()
    try:
        sentinel = event(subject, "dev-r2", 1, "first after deploy")
        send(s, sentinel)
        wait_until(
            lambda: landed(s, sentinel["event_id"]) == 1,
            180,
            "the new worker running",
            alive=lambda: worker.running,
            diag=worker.tail,
        )
        assert landed(s, newer["event_id"]) == 0  # not without a replay

        code, out = dlq(s, capsys, "replay", "--reason", "unknown_schema", "--dry-run")
        assert code == 0 and out.startswith("would replay 1 of 1") and dead_id in out
        code, out = dlq(s, capsys, "replay", "--reason", "unknown_schema")
        assert code == 0 and out.startswith("replayed 1 of 1"), out
        wait_until(
            lambda: landed(s, newer["event_id"]) == 1,
            120,
            "the replayed event landed",
            alive=lambda: worker.running,
            diag=worker.tail,
        )

        # run twice: skipped; forced with --again: it still lands once
        code, out = dlq(s, capsys, "replay", "--reason", "unknown_schema")
        assert out.startswith("replayed 0 of 1") and "1 already replayed" in out
        code, out = dlq(s, capsys, "replay", "--id", dead_id, "--again")
        assert out.startswith("replayed 1 of 1"), out
        later = event(subject, "dev-r1", 2, "after the second replay")
        send(s, later)  # same device, same partition: lands after the resent copy was handled
        wait_until(
            lambda: landed(s, later["event_id"]) == 1,
            120,
            "the later event landed",
            alive=lambda: worker.running,
            diag=worker.tail,
        )
        time.sleep(1.0)  # the sinks' batch age
        assert landed(s, newer["event_id"]) == 1
        assert landed(s, newer["event_id"], final=True) == 1
    finally:
        worker.stop()

    # (1) the look-alike travelled as a real token and landed as typed
    # (typed text itself is withheld from per-event rows by design: it goes to actions)
    row = (
        connect(s)
        .query(
            "SELECT window_title, redactions FROM events WHERE event_id = {e:String}",
            parameters={"e": newer["event_id"]},
        )
        .result_rows
    )
    assert row == [(LOOKALIKE, [])]
    clean = TopicReader(s, s.kafka.topic("capture.clean"))
    try:
        wait_until(
            lambda: (clean.poll(), any(e["event_id"] == newer["event_id"] for e in clean.events()))[
                1
            ],
            30,
            "capture.clean read",
        )
        record = next(
            m
            for m in clean.records
            if any(e["event_id"] == newer["event_id"] for e in clean_events([m]))
        )
        assert LOOKALIKE.encode() not in record.value()  # sealed, not in clear
        batch = decode(record.value())[1]
        assert batch["content"] is not None
        opened = decrypt_record("CleanBatch", batch, all_sinks)["events"]
        sealed = next(e for e in opened if e["event_id"] == newer["event_id"])
        assert sealed["app"]["window_title"] == LOOKALIKE
    finally:
        clean.close()
