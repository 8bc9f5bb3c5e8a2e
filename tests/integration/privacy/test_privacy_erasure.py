"""(c) Erasure against the real stack: after `candor erase`, zero rows of the
subject in every table, their content in Kafka no longer decrypts, the receipt
lists the exports that held them; erasing twice is refused.

The worker's encryption step (`backends.clickhouse.key_store.encrypt_clean_event`/`encrypt_action`,
wired into streams/app.py by the lead) is played here by the test producing its
outputs, so the sinks (real, with the decrypt hook) and the erasure meet real
ciphertexts in real topics.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from backends.clickhouse.connection import connect
from backends.clickhouse.key_store import KeyView, load_keyset
from candor.settings import Settings
from privacy.content_keys import encrypt_action, encrypt_clean_event
from privacy.keystore import SubjectErased
from privacy.shredding import decrypt_event_content, is_encrypted
from schemas.codec import decode, encode, encode_event
from sinks.export import export
from tests.harness import TopicReader, wait_until
from tests.integration.privacy.pipeline import MASTER, Cli
from tests.unit.sinks.sinks_samples import MINUTE, SESSION, action, event

pytestmark = pytest.mark.integration

ALL = (
    "activity_metadata,keystroke_content,screen_frames,ide_content,terminal_content,"
    "training_use,analytics"
)
PEOPLE = ("alice", "bob")
TABLES = ("events", "sessions", "activity_minutes", "actions")


def now_micros() -> int:
    return time.time_ns() // 1000


def outputs(subject: str, now: int) -> dict[str, list[dict[str, Any]]]:
    """One person's share of the worker's outputs, before encryption."""
    evs = []
    for n, kind in enumerate(("KeyInput", "TerminalCommand", "IdeEdit", "WindowFocus")):
        e = event(kind, ts=now - 120_000_000 + n, seq=n, subject=subject, device=f"dev-{subject}")
        e["org_id"] = "org-p"
        e["app"]["window_title"] = f"{subject} secret plans.txt"
        evs.append(e)
    evs[0]["payload"]["text"] = f"{subject} typed this"
    acts = []
    for n, kind in enumerate(("typing", "command")):
        a = action(
            kind,
            subject=subject,
            start=now - 100_000_000 + n * 2_000_000,
            session=f"{subject}:dev-{subject}:1",
            n=n,
        )
        a.update(org_id="org-p", device_id=f"dev-{subject}")
        acts.append(a)
    session = dict(
        SESSION,
        session_id=f"{subject}:dev-{subject}:1",
        subject_id=subject,
        device_id=f"dev-{subject}",
        org_id="org-p",
        start_ts=now - 120_000_000,
        end_ts=now - 60_000_000,
    )
    minute = dict(
        MINUTE,
        subject_id=subject,
        org_id="org-p",
        window_start=(now - 120_000_000) - (now - 120_000_000) % 60_000_000,
        device_id=f"dev-{subject}",
    )
    return {"events": evs, "actions": acts, "sessions": [session], "minutes": [minute]}


def publish(s: Settings, view: KeyView, subject: str, now: int) -> dict[str, list[Any]]:
    out = outputs(subject, now)
    producer = Producer({"bootstrap.servers": s.kafka.bootstrap})
    t = s.kafka.topic
    for e in out["events"]:
        producer.produce(
            t("capture.clean"), key=e["device_id"], value=encode_event(encrypt_clean_event(e, view))
        )
    for a in out["actions"]:
        producer.produce(
            t("training.actions"), key=subject, value=encode("Action", encrypt_action(a, view))
        )
    for x in out["sessions"]:
        producer.produce(t("activity.sessions"), key=subject, value=encode("Session", x))
    for m in out["minutes"]:
        producer.produce(t("activity.minutes"), key=subject, value=encode("MinuteAggregate", m))
    assert producer.flush(30) == 0
    return out


def counts(s: Settings, subject: str) -> dict[str, int]:
    client = connect(s)
    return {
        t: int(
            client.query(
                f"SELECT count() FROM {t} WHERE subject_id = {{s:String}}",
                parameters={"s": subject},
            ).result_rows[0][0]
        )
        for t in TABLES
    }


def test_erase_end_to_end(
    private_settings: Settings,
    cli: Cli,
    sinks: KeyView,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = private_settings
    for person in PEOPLE:
        assert (
            cli(
                "consent",
                "grant",
                "--subject",
                person,
                "--org",
                "org-p",
                "--scopes",
                ALL,
                "--by",
                "dpo",
            )
            == 0
        )
    wait_until(lambda: all(sinks.live(p) for p in PEOPLE), 20, "keys visible to the sinks")
    now = now_micros()
    for person in PEOPLE:
        publish(s, sinks, person, now)
    client = connect(s)
    wait_until(
        lambda: all(n >= 1 for p in PEOPLE for n in counts(s, p).values()),
        60,
        "every table to hold both people",
    )
    # the sinks decrypted: ClickHouse holds clear text; Kafka holds only ciphertext
    text = client.query(
        "SELECT text FROM events WHERE subject_id = 'alice' AND event_type = 'KeyInput'"
    ).result_rows
    assert text == [("alice typed this",)]
    clean = TopicReader(s, s.kafka.topic("capture.clean"))
    wait_until(lambda: (clean.poll(), len(clean.records) >= 8)[1], 30, "capture.clean read")
    in_kafka = [decode(m.value())[1] for m in clean.records]
    alice_kafka = [e for e in in_kafka if e["subject_id"] == "alice"]
    assert all(is_encrypted(e["app"]["window_title"]) for e in alice_kafka)

    wait_until(
        lambda: len(client.query("SELECT 1 FROM consent_ledger").result_rows) >= 2,
        30,
        "consent ledger landed",
    )
    day = timedelta(days=1)
    result = export(
        s, datetime.now(UTC) - day, datetime.now(UTC) + day, tmp_path / "export", fmt="jsonl"
    )
    assert result.subjects == 2
    capsys.readouterr()

    assert cli("erase", "--subject", "alice", "--yes", "--settle", "2", "--by", "dpo") == 0
    receipt = json.loads(capsys.readouterr().out)
    assert counts(s, "alice") == dict.fromkeys(TABLES, 0)
    assert all(n >= 1 for n in counts(s, "bob").values())  # nobody else touched
    assert [e["export_id"] for e in receipt["exports"]] == [result.export_id]
    assert receipt["rows_deleted"]["events"] == 4 and receipt["rows_deleted"]["actions"] == 2
    assert receipt["consent_version"] == 2 and len(receipt["key_ids"]) == 1
    audit = client.query(
        "SELECT action, subject FROM audit_log WHERE subject = 'alice' ORDER BY at"
    ).result_rows
    assert [a for a, _ in audit] == ["key_create", "consent_grant", "key_destroy", "erase"]

    # Kafka still holds alice's ciphertexts, and nobody can read them any more
    fresh = load_keyset(connect(s), MASTER)
    for e in alice_kafka:
        with pytest.raises(SubjectErased):
            decrypt_event_content(e, fresh)
    bob = next(e for e in in_kafka if e["subject_id"] == "bob" and e["payload"]["text"])
    assert decrypt_event_content(bob, fresh)["payload"]["text"] == "bob typed this"
    # her consent is gone in the registry: the workers drop her events from now on
    assert cli("consent", "show", "--subject", "alice") == 0
    assert json.loads(capsys.readouterr().out)["scopes"] == []

    # twice: refused, nothing changes; a new grant for her is refused too
    assert cli("erase", "--subject", "alice", "--yes") == 2
    assert "AlreadyErased" in capsys.readouterr().err
    assert cli("consent", "grant", "--subject", "alice", "--scopes", "activity_metadata") == 2
    assert "SubjectAlreadyErased" in capsys.readouterr().err
    assert cli("erase", "--subject", "nobody-known", "--yes", "--settle", "0") == 2
    assert "UnknownSubject" in capsys.readouterr().err
    clean.close()


def test_wrong_master_key_is_refused_before_any_write(
    private_settings: Settings, cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli(
            "consent",
            "grant",
            "--subject",
            "carol",
            "--org",
            "org-p",
            "--scopes",
            "activity_metadata",
        )
        == 0
    )
    wrong = tmp_path / "wrong.key"
    wrong.write_text(bytes(32).hex())
    before = connect(private_settings).query("SELECT count() FROM subject_keys").result_rows
    assert (
        cli(
            "consent",
            "grant",
            "--subject",
            "dave",
            "--org",
            "org-p",
            "--scopes",
            "activity_metadata",
            "--master-key-file",
            str(wrong),
        )
        == 2
    )
    assert "WrongMasterKey" in capsys.readouterr().err
    assert connect(private_settings).query("SELECT count() FROM subject_keys").result_rows == before
    assert cli("consent", "show", "--subject", "dave") == 2  # no consent was published
    assert cli("keys", "check", "--master-key-file", str(wrong)) == 2
    assert cli("consent", "revoke", "--subject", "carol") == 0
    assert cli("consent", "revoke", "--subject", "carol") == 2
    assert "AlreadyRevoked" in capsys.readouterr().err
    assert cli("consent", "revoke", "--subject", "unknown-person") == 2
