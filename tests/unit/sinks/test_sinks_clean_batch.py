"""The `events` sink on capture.clean: CleanBatch records (content opened once
per batch) and the per-event CaptureEvent records written before them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from privacy.content_keys import (
    NO_DATA_KEY,
    encrypt_clean_event,
    open_clean_batch,
    seal_clean_batch,
    sink_decrypt,
)
from privacy.keyset import KeyRecord, KeySet
from privacy.shredding import UndecryptableField
from privacy.wrapping import new_data_key, wrap_data_key
from schemas.codec import decode, encode, encode_event
from schemas.errors import InvalidField
from sinks.routes import Unmappable, map_message, route_for
from sinks.rows import event_row
from tests.unit.privacy.privacy_events import PAYLOADS, SUBJECT, make_event

MASTER = bytes(range(32))
OTHER_SUBJECT = "s2_subject"


def keys_of(*subjects: str, destroyed: tuple[str, ...] = ()) -> tuple[KeySet, dict[str, str]]:
    records, ids = [], {}
    for subject in subjects:
        key = new_data_key()
        ids[subject] = key.key_id
        records.append(
            KeyRecord(subject, key.key_id, wrap_data_key(MASTER, subject, key), 1, False)
        )
    return KeySet(records, MASTER), ids


def erase(keys_ids: dict[str, str], live: KeySet, subject: str) -> KeySet:
    """The key set after ``subject``'s key was destroyed (the others kept)."""
    records = [KeyRecord(subject, keys_ids[subject], "", 1, True)]
    for other, key_id in keys_ids.items():
        if other != subject:
            key = live.key_for_id(key_id)
            from privacy.keystore import DataKey

            records.append(
                KeyRecord(
                    other, key_id, wrap_data_key(MASTER, other, DataKey(key_id, key)), 1, False
                )
            )
    return KeySet(records, MASTER)


def clean_events(subject: str = SUBJECT, n: int = 9) -> list[dict[str, Any]]:
    kinds = sorted(PAYLOADS)
    return [
        make_event(
            kinds[i % len(kinds)],
            subject_id=subject,
            seq=i + 1,
            device_id=f"dev-{subject}",
            event_id=str(uuid.uuid4()),
            consent_version=3,
        )
        for i in range(n)
    ]


def rows_of(value: bytes, keys: KeySet) -> list[Any]:
    return [
        row
        for row, _ts in map_message(
            route_for("events"), value, None, "capture.clean", 0, 0, sink_decrypt(keys)
        )
    ]


def test_a_clean_batch_lands_one_row_per_event_with_its_content_in_clear() -> None:
    keys, _ = keys_of(SUBJECT)
    evs = clean_events()
    value = encode("CleanBatch", seal_clean_batch("b-1", copy.deepcopy(evs), keys))
    assert b"ls -la" not in value and b"consent.py - candor" not in value  # sealed
    assert rows_of(value, keys) == [event_row(e) for e in evs]


def test_todays_per_event_clean_records_still_land() -> None:
    keys, _ = keys_of(SUBJECT)
    evs = clean_events()
    for event in evs:  # as the worker wrote capture.clean before clean batches
        assert rows_of(encode_event(encrypt_clean_event(event, keys)), keys) == [event_row(event)]


def test_erasing_one_subject_leaves_exactly_its_batches_unreadable() -> None:
    keys, ids = keys_of(SUBJECT, OTHER_SUBJECT)
    mine, theirs = clean_events(SUBJECT), clean_events(OTHER_SUBJECT)
    mine_value = encode("CleanBatch", seal_clean_batch("b-1", copy.deepcopy(mine), keys))
    theirs_value = encode("CleanBatch", seal_clean_batch("b-2", copy.deepcopy(theirs), keys))
    after = erase(ids, keys, SUBJECT)
    assert rows_of(mine_value, after) == []  # skipped: neither landed nor dead-lettered
    with pytest.raises(Exception, match=r"destroyed|erased"):
        open_clean_batch(decode(mine_value)[1], after)
    assert rows_of(theirs_value, after) == [event_row(e) for e in theirs]


def test_content_moved_to_another_batch_does_not_open() -> None:
    keys, _ = keys_of(SUBJECT)
    sealed = seal_clean_batch("b-1", clean_events(), keys)
    moved = {**sealed, "batch_id": "b-2"}
    with pytest.raises(Unmappable) as err:
        rows_of(encode("CleanBatch", moved), keys)
    assert err.value.reason == "unmappable"
    with pytest.raises(UndecryptableField):
        open_clean_batch(decode(encode("CleanBatch", moved))[1], keys)


def test_a_subject_without_a_key_gets_its_content_cleared_not_published() -> None:
    keys, _ = keys_of()
    evs = clean_events()
    sealed = seal_clean_batch("b-1", evs, keys)
    assert sealed["key_id"] is None and sealed["content"] is None
    commands = [e for e in sealed["events"] if e["payload"]["type"] == "TerminalCommand"]
    assert commands and all(e["payload"]["command"] == "" for e in commands)
    assert all(e["app"]["window_title"] is None for e in sealed["events"])
    assert all(NO_DATA_KEY in e["redactions"] for e in sealed["events"])
    assert evs[0]["app"]["window_title"] == "consent.py - candor"  # input not mutated


def test_a_batch_mixing_devices_is_refused_whole() -> None:
    keys, _ = keys_of(SUBJECT)
    sealed = seal_clean_batch("b-1", clean_events(), keys)
    sealed["events"][3]["device_id"] = "another"
    with pytest.raises(InvalidField):
        encode("CleanBatch", sealed)
