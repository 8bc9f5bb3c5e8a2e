"""Shared key store, pure parts: wrapping, snapshots, what workers and sinks do."""

from __future__ import annotations

import argparse
import base64
import io
from pathlib import Path
from typing import Any

import pytest

from candor.privacy_cli import BAD_INPUT, MissingMasterKey, add_commands, master_key, redact_stream
from candor.settings import Settings, replace
from privacy.content_keys import (
    NO_DATA_KEY,
    decrypt_record,
    encrypt_action,
    encrypt_clean_event,
)
from privacy.keyset import KeyRecord, KeySet
from privacy.keystore import SubjectErased, UnknownDataKey, WrongMasterKey
from privacy.shredding import UndecryptableField, is_encrypted
from privacy.wrapping import (
    InvalidMasterKey,
    MalformedWrappedKey,
    make_check,
    new_data_key,
    parse_master_key,
    unwrap_data_key,
    verify_check,
    wrap_data_key,
)
from sinks.migrate import load_migrations, render
from tests.unit.privacy.privacy_events import PAYLOADS, SUBJECT, make_event

MASTER = bytes(range(32))
OTHER = bytes(32)


def record(
    subject: str, master: bytes = MASTER, created: int = 1, destroyed: bool = False
) -> tuple[KeyRecord, bytes]:
    key = new_data_key()
    wrapped = "" if destroyed else wrap_data_key(master, subject, key)
    return KeyRecord(subject, key.key_id, wrapped, created, destroyed), key.key


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (MASTER.hex(), True),
        (base64.b64encode(MASTER).decode(), True),
        (f"  {MASTER.hex()}\n", True),
        (MASTER.hex()[:-2], False),
        (base64.b64encode(bytes(16)).decode(), False),
        ("not a key at all", False),
        ("", False),
    ],
)
def test_master_key_forms(text: str, ok: bool) -> None:
    if ok:
        assert parse_master_key(text) == MASTER
    else:
        with pytest.raises(InvalidMasterKey) as err:
            parse_master_key(text)
        assert MASTER.hex() not in str(err.value)


def test_wrapped_key_opens_only_with_its_master_subject_and_id() -> None:
    key = new_data_key()
    wrapped = wrap_data_key(MASTER, "alice", key)
    assert key.key.hex() not in wrapped
    assert unwrap_data_key(MASTER, "alice", key.key_id, wrapped) == key
    for master, subject, key_id in (
        (OTHER, "alice", key.key_id),
        (MASTER, "bob", key.key_id),
        (MASTER, "alice", "0" * 16),
    ):
        with pytest.raises(WrongMasterKey):
            unwrap_data_key(master, subject, key_id, wrapped)
    for bad in ("", "!!!", base64.b64encode(b"short").decode()):
        with pytest.raises(MalformedWrappedKey):
            unwrap_data_key(MASTER, "alice", key.key_id, bad)


def test_check_value_tells_the_wrong_master_key() -> None:
    check = make_check(MASTER)
    verify_check(MASTER, check)
    assert make_check(MASTER) != check
    with pytest.raises(WrongMasterKey):
        verify_check(OTHER, check)


def test_keyset_live_erased_and_unknown() -> None:
    alice, alice_key = record("alice")
    bob_dead, _ = record("bob", destroyed=True)
    keys = KeySet([alice, bob_dead], MASTER)
    assert keys.live("alice") is not None and keys.live("alice").key == alice_key  # type: ignore[union-attr]
    assert keys.key_for_id(alice.key_id) == alice_key
    assert keys.live("bob") is None and keys.is_erased("bob") and not keys.is_erased("alice")
    with pytest.raises(SubjectErased):
        keys.key_for_id(bob_dead.key_id)
    with pytest.raises(UnknownDataKey):
        keys.key_for_id("feedfeedfeedfeed")
    assert keys.live("carol") is None and not keys.is_erased("carol") and len(keys) == 1


def test_two_live_keys_every_reader_picks_the_oldest_and_both_decrypt() -> None:
    late, late_key = record("alice", created=20)
    early, early_key = record("alice", created=10)
    for order in ([late, early], [early, late]):
        keys = KeySet(order, MASTER)
        assert keys.live("alice").key_id == early.key_id  # type: ignore[union-attr]
        assert keys.key_for_id(late.key_id) == late_key
        assert keys.key_for_id(early.key_id) == early_key


def test_a_key_seen_live_and_destroyed_counts_as_destroyed() -> None:
    live, _ = record("alice")
    tomb = KeyRecord("alice", live.key_id, "", 2, True)
    keys = KeySet([live, tomb], MASTER)
    assert keys.live("alice") is None and keys.is_erased("alice")


def test_keyset_refuses_another_master_key() -> None:
    rec, _ = record("alice")
    with pytest.raises(WrongMasterKey):
        KeySet([rec], OTHER)


@pytest.mark.parametrize("payload_type", sorted(PAYLOADS))
def test_worker_encrypts_every_content_field_and_sink_restores_it(payload_type: str) -> None:
    rec, _ = record(SUBJECT)
    keys = KeySet([rec], MASTER)
    event = make_event(payload_type)
    sealed = encrypt_clean_event(event, keys)
    content = {"text", "key", "command", "diff", "ref", "phash"}
    for name, value in sealed["payload"].items():
        if name in content and value:
            assert is_encrypted(value), name
    assert is_encrypted(sealed["app"]["window_title"]) and is_encrypted(sealed["app"]["url_host"])
    assert sealed["app"]["app_name"] == "Code" and sealed["device_id"] == event["device_id"]
    assert decrypt_record("CaptureEvent", sealed, keys) == event


@pytest.mark.parametrize(
    ("payload_type", "field", "cleared"),
    [
        ("KeyInput", "text", None),
        ("KeyInput", "key", None),
        ("TerminalCommand", "command", ""),
        ("IdeEdit", "diff", None),
        ("ScreenFrame", "ref", ""),
        ("ScreenFrame", "phash", ""),
    ],
)
def test_subject_without_key_loses_content_keeps_counts(
    payload_type: str, field: str, cleared: str | None
) -> None:
    event = make_event(payload_type)
    out = encrypt_clean_event(event, KeySet([], MASTER))
    assert out["payload"][field] == cleared
    assert out["app"]["window_title"] is None and out["app"]["app_name"] == "Code"
    assert out["redactions"] == [NO_DATA_KEY]
    kept = {
        k: v for k, v in event["payload"].items() if k not in {field, "key", "text", "ref", "phash"}
    }
    assert {k: out["payload"][k] for k in kept} == kept
    assert event["payload"][field] not in (None, "")  # input not mutated


def test_erased_subject_content_reads_empty_at_the_sink() -> None:
    rec, _ = record(SUBJECT)
    sealed = encrypt_clean_event(make_event("TerminalCommand"), KeySet([rec], MASTER))
    after = KeySet([KeyRecord(SUBJECT, rec.key_id, "", 1, True)], MASTER)
    out = decrypt_record("CaptureEvent", sealed, after)
    assert out["payload"]["command"] == "" and out["app"]["window_title"] is None
    assert out["payload"]["exit_code"] == 0 and out["seq"] == 1


def test_token_under_a_key_the_store_never_had_is_refused() -> None:
    rec, _ = record(SUBJECT)
    sealed = encrypt_clean_event(make_event("KeyInput"), KeySet([rec], MASTER))
    with pytest.raises(UndecryptableField):
        decrypt_record("CaptureEvent", sealed, KeySet([], MASTER))


def action() -> dict[str, Any]:
    return {
        "action_id": "a1",
        "subject_id": SUBJECT,
        "kind": "typing",
        "text": "hello",
        "window_title": "notes",
        "command": None,
        "redactions": [],
    }


def test_actions_round_trip_and_clear() -> None:
    rec, _ = record(SUBJECT)
    keys = KeySet([rec], MASTER)
    sealed = encrypt_action(action(), keys)
    assert is_encrypted(sealed["text"]) and is_encrypted(sealed["window_title"])
    assert sealed["command"] is None
    assert decrypt_record("Action", sealed, keys) == action()
    moved = dict(sealed, action_id="a2")
    with pytest.raises(UndecryptableField):
        decrypt_record("Action", moved, keys)
    erased = KeySet([KeyRecord(SUBJECT, rec.key_id, "", 1, True)], MASTER)
    assert decrypt_record("Action", sealed, erased)["text"] is None
    unkeyed = encrypt_action(action(), KeySet([], MASTER))
    assert unkeyed["text"] is None and unkeyed["redactions"] == [NO_DATA_KEY]


def test_other_records_pass_the_sink_unchanged() -> None:
    session = {"session_id": "x", "subject_id": SUBJECT, "keystrokes": 3}
    assert decrypt_record("Session", session, KeySet([], MASTER)) is session


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("", ""),
        ("hello\n", "hello\n"),
        ("mail bob@example.com now\nplain\n", "mail <PII:email> now\nplain\n"),
        ("no newline at end", "no newline at end"),
        ("\n\n", "\n\n"),
        ("crlf line\r\nnext\n", "crlf line\r\nnext\n"),
    ],
)
def test_redact_stream_one_line_out_per_line_in(lines: str, expected: str) -> None:
    out = io.StringIO()
    assert redact_stream(io.StringIO(lines), out) == lines.count("\n") + (
        0 if lines.endswith("\n") or not lines else 1
    )
    assert out.getvalue() == expected


def test_redact_stream_flushes_each_line() -> None:
    flushes: list[str] = []

    class Recorder(io.StringIO):
        def flush(self) -> None:
            flushes.append(self.getvalue())

    redact_stream(io.StringIO("a\nb\n"), Recorder())
    assert flushes == ["a\n", "a\nb\n"]


def test_master_key_from_file_or_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text(MASTER.hex() + "\n")
    settings = Settings(home=tmp_path / "home")
    assert master_key(argparse.Namespace(master_key_file=path), settings) == MASTER
    # no key configured: the local stack's key file, created once, private, stable
    local = master_key(argparse.Namespace(master_key_file=None), settings)
    key_file = tmp_path / "home" / "privacy" / "master.key"
    assert len(local) == 32 and key_file.stat().st_mode & 0o077 == 0
    assert master_key(argparse.Namespace(master_key_file=None), settings) == local
    with pytest.raises(MissingMasterKey):
        master_key(argparse.Namespace(master_key_file=tmp_path / "none"), settings)


@pytest.mark.parametrize(
    "argv",
    [
        ["consent", "grant", "--subject", "s", "--org", "o", "--scopes", "activity_metadata,typo"],
        ["consent", "revoke", "--subject", "s", "--scopes", "keystrokes"],
    ],
)
def test_malformed_scope_exits_2_before_touching_anything(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    handlers = add_commands(sub)
    args = parser.parse_args(argv)
    assert handlers[args.command](args, Settings()) == BAD_INPUT
    err = capsys.readouterr().err
    assert "UnknownScope" in err and ("typo" in err or "keystrokes" in err)


def test_key_store_and_analyst_migrations_render() -> None:
    settings = replace(Settings(), clickhouse={"database": "cdb"})
    text = {m.version: m.template for m in load_migrations()}
    keys = " ".join(render(text[3], settings))
    assert "cdb.subject_keys" in keys and "cdb.key_store_check" in keys
    views = render(text[4], settings)
    assert views[0] == "CREATE DATABASE IF NOT EXISTS analyst_cdb"
    for view in views[1:]:
        assert view.startswith("CREATE VIEW IF NOT EXISTS analyst_cdb.")
        assert "SQL SECURITY DEFINER" in view and "HAVING people >= 5" in view
        assert "'analytics'" in view and "action = 'erase'" in view
        for content in ("text", "window_title", "command", "diff", "subject_id AS"):
            assert f" {content}," not in view.split("FROM")[0], content
