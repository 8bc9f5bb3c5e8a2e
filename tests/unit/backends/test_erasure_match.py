"""Erasure finds a subject's dead letters by exact subject id, never by substring."""

from __future__ import annotations

import json

import pytest

from backends.erasure import dead_letter_holds
from schemas.codec import encode_event
from tests.unit.privacy.privacy_events import make_event

UNKNOWN_FINGERPRINT = b"\xc3\x01" + bytes(8)  # no released schema has this fingerprint


def _raw(subject: str) -> bytes:
    return encode_event(make_event("KeyInput", subject_id=subject))


@pytest.mark.parametrize("subject", ["s1", "s10", "s1 ", "s"])
def test_decodable_dead_letter_matches_its_subject_only(subject: str) -> None:
    raw = _raw("s10")
    assert dead_letter_holds(raw, subject) is (subject == "s10")


def test_neighbouring_ids_in_undecodable_letters() -> None:
    """Unknown schema: the body is still Avro, a subject id a length-prefixed string."""
    s1 = UNKNOWN_FINGERPRINT + _raw("s1")[10:]
    s10 = UNKNOWN_FINGERPRINT + _raw("s10")[10:]
    assert dead_letter_holds(s1, "s1") and not dead_letter_holds(s1, "s10")
    assert dead_letter_holds(s10, "s10") and not dead_letter_holds(s10, "s1")


def test_json_dead_letter_matches_whole_value() -> None:
    raw = json.dumps({"subject_id": "s10", "text": "about s1"}).encode()
    assert dead_letter_holds(raw, "s10")
    assert not dead_letter_holds(raw, "s1")
    assert not dead_letter_holds(b"garbage mentioning s1 and s10", "s1")
