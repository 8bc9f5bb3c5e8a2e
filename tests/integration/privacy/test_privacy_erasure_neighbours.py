"""Erasure deletes exactly the subject's dead letters: erasing ``s1`` leaves the
dead letters of ``s10`` (and of ``s1x``) in place, in ClickHouse for real."""

from __future__ import annotations

import pytest

from backends.clickhouse.connection import connect
from backends.erasure import erase
from candor.settings import Settings
from schemas.codec import encode_event
from sinks.rows import DEAD_LETTER_COLUMNS, dead_letter_row
from tests.unit.sinks.sinks_samples import event

pytestmark = pytest.mark.integration

UNKNOWN_FINGERPRINT = b"\xc3\x01" + bytes(8)


def _letters(s: Settings, subjects: list[str]) -> None:
    rows = []
    offset = 0
    for subject in subjects:
        raw = encode_event(event("KeyInput", subject=subject, device=f"dev-{subject}"))
        for reason, value in (
            ("invalid_field", raw),
            ("unknown_schema", UNKNOWN_FINGERPRINT + raw[10:]),
        ):
            headers = {
                "reason": reason,
                "original_topic": "capture.events",
                "original_partition": "0",
                "original_offset": str(offset),
            }
            rows.append(dead_letter_row(value, headers, "capture.dlq", 0, offset))
            offset += 1
    connect(s).insert("dead_letters", rows, column_names=DEAD_LETTER_COLUMNS)


def _left(s: Settings) -> list[tuple[str, int]]:
    return [
        (str(r), int(o))
        for r, o in connect(s)
        .query("SELECT reason, original_offset FROM dead_letters FINAL ORDER BY original_offset")
        .result_rows
    ]


def test_erasing_s1_keeps_the_dead_letters_of_s10(private_settings: Settings) -> None:
    s = private_settings
    _letters(s, ["s1", "s10", "s1x"])
    assert len(_left(s)) == 6
    receipt = erase(s, "s1", settle_s=0, revoker=lambda _s, _a: None, known=lambda _s: True)
    assert receipt.rows_deleted["dead_letters"] == 2
    assert _left(s) == [
        ("invalid_field", 2),
        ("unknown_schema", 3),
        ("invalid_field", 4),
        ("unknown_schema", 5),
    ]
