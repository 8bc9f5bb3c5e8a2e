"""Row mapping: every payload type lands in the right typed columns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.errors import UnknownPayloadType
from sinks.rows import (
    ACTION_COLUMNS,
    CONSENT_COLUMNS,
    DEAD_LETTER_COLUMNS,
    EVENT_COLUMNS,
    MINUTE_COLUMNS,
    SESSION_COLUMNS,
    action_row,
    consent_row,
    dead_letter_row,
    event_row,
    minute_row,
    session_row,
)
from tests.unit.sinks.sinks_samples import MINUTE, PAYLOADS, SESSION, TS, action, consent, event

EXPECTED: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "KeyInput",
        {"key_name": "a", "text": "héllo", "modifiers": ["ctrl"], "keys_count": 5},
        {"is_secure_field": False},
    ),
    (
        "MouseMove",
        {"mouse_points": 3, "mouse_distance_px": 11.0, "keys_count": 0},
        {"path": PAYLOADS["MouseMove"]["path"]},
    ),
    ("MouseClick", {"button": "left", "x": 100, "y": 200}, {"double": True}),
    ("Scroll", {"dx": -3, "dy": 120, "x": None}, {}),
    ("WindowFocus", {"previous_app_name": "firefox"}, {}),
    (
        "ScreenFrame",
        {"frame_ref": "sha256:" + "ab" * 32},
        {"frame_id": "f-1", "width": 1920, "height": 1080, "phash": "0123456789abcdef"},
    ),
    (
        "IdeEdit",
        {"language": "python", "chars_inserted": 12, "chars_deleted": 2, "diff": "+print('x')\n"},
        {"path_hash": "p" * 16},
    ),
    ("TerminalCommand", {"command": "git status", "exit_code": 1}, {"cwd_hash": "c" * 16}),
    ("ActivityState", {"activity_state": "idle", "command": None}, {}),
]


@pytest.mark.parametrize(("kind", "columns", "rest"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_event_row_flattens_each_payload_type(
    kind: str, columns: dict[str, Any], rest: dict[str, Any]
) -> None:
    ev = event(kind, seq=7)
    row = dict(zip(EVENT_COLUMNS, event_row(ev), strict=True))
    assert row["event_type"] == kind
    assert (row["event_id"], row["seq"], row["ts"]) == (ev["event_id"], 7, TS)
    assert (row["app_name"], row["window_title"], row["url_host"]) == ("code", "main.py", None)
    assert row["redactions"] == ["email"] and row["consent_version"] == 3
    for name, value in columns.items():
        assert row[name] == value, name
    assert json.loads(row["payload_json"]) == rest


def test_event_row_refuses_an_unknown_payload_type() -> None:
    ev = event()
    ev["payload"] = {"type": "Telepathy"}
    with pytest.raises(UnknownPayloadType):
        event_row(ev)


def test_event_row_of_an_old_event_without_optional_fields() -> None:
    ev = event("Scroll")
    for optional in ("received_ts", "consent_version", "client_version", "redactions"):
        del ev[optional]
    row = dict(zip(EVENT_COLUMNS, event_row(ev), strict=True))
    assert row["received_ts"] is None and row["redactions"] == []


@pytest.mark.parametrize(
    ("fn", "columns", "record"),
    [
        (session_row, SESSION_COLUMNS, SESSION),
        (minute_row, MINUTE_COLUMNS, MINUTE),
        (consent_row, CONSENT_COLUMNS, consent()),
    ],
)
def test_records_map_column_by_column(
    fn: Any, columns: tuple[str, ...], record: dict[str, Any]
) -> None:
    row = dict(zip(columns, fn(record), strict=True))
    assert row == {c: record[c] if c != "scopes" else sorted(record[c]) for c in columns}


@pytest.mark.parametrize("kind", ["typing", "shortcut", "click", "drag", "scroll", "command"])
def test_action_row_keeps_every_field_and_flattens_the_path(kind: str) -> None:
    a = action(kind)
    row = dict(zip(ACTION_COLUMNS, action_row(a), strict=True))
    assert row["path"] == [(p["dt_ms"], p["x"], p["y"]) for p in a["path"]]
    assert {k: v for k, v in row.items() if k != "path"} == {
        k: a[k] for k in ACTION_COLUMNS if k != "path"
    }


@pytest.mark.parametrize(
    ("headers", "reason", "original"),
    [
        (
            [
                ("reason", b"undecodable"),
                ("error", b"bad"),
                ("original_topic", b"capture.clean"),
                ("original_partition", b"3"),
                ("original_offset", b"42"),
            ],
            "undecodable",
            ("capture.clean", 3, 42),
        ),
        (None, "unknown", ("", -1, -1)),
        ([("reason", b"x"), ("original_partition", b"not-a-number")], "x", ("", -1, -1)),
    ],
)
def test_dead_letter_row_reads_the_original_coordinates(
    headers: Any, reason: str, original: tuple[str, int, int]
) -> None:
    row = dict(
        zip(
            DEAD_LETTER_COLUMNS,
            dead_letter_row(b"\xff\x00raw", headers, "capture.dlq", 1, 9),
            strict=True,
        )
    )
    assert row["reason"] == reason
    assert (row["original_topic"], row["original_partition"], row["original_offset"]) == original
    assert (row["dlq_topic"], row["dlq_partition"], row["dlq_offset"]) == ("capture.dlq", 1, 9)
    assert row["raw"] == b"\xff\x00raw"


def test_dead_letters_of_events_in_one_batch_are_numbered_from_one() -> None:
    base = [
        ("reason", b"invalid_field"),
        ("original_topic", b"capture.events"),
        ("original_partition", b"3"),
        ("original_offset", b"41"),
    ]
    whole = dict(zip(DEAD_LETTER_COLUMNS, dead_letter_row(b"x", base, "dlq", 0, 7), strict=True))
    first = dict(
        zip(
            DEAD_LETTER_COLUMNS,
            dead_letter_row(b"x", [*base, ("event_index", b"0")], "dlq", 0, 8),
            strict=True,
        )
    )
    third = dict(
        zip(
            DEAD_LETTER_COLUMNS,
            dead_letter_row(b"x", [*base, ("event_index", b"2")], "dlq", 0, 9),
            strict=True,
        )
    )
    assert (whole["event_number"], first["event_number"], third["event_number"]) == (0, 1, 3)
