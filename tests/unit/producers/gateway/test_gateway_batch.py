"""Batch parsing, identity and per-event validation of POST /v1/events."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from producers.gateway.auth import DeviceIdentity
from producers.gateway.batch import (
    Rejection,
    check_identity,
    device_batches,
    parse_body,
    plan_batch,
)
from producers.gateway.errors import BadRequest, Forbidden, UnsupportedMediaType
from producers.gateway.framing import AVRO_BATCH, frame_messages
from schemas.batch import decode_capture
from schemas.codec import decode_event, encode_event

ME = DeviceIdentity("dev-a", "sub-a", "org-a")
NOW = 1_760_000_000_123_456


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "org_id": "org-a",
        "subject_id": "sub-a",
        "device_id": "dev-a",
        "seq": 7,
        "ts": 1_760_000_000_000_000,
        "received_ts": None,
        "app": {"app_name": "code", "window_title": None, "url_host": None},
        "payload": {"type": "Scroll", "dx": 0, "dy": 3},
        "redactions": [],
        "consent_version": None,
    }
    base.update(fields)
    return base


def body(*events: Any) -> bytes:
    return json.dumps({"events": list(events)}).encode()


@pytest.mark.parametrize(
    ("raw", "content_type", "reason"),
    [
        (b"{", "application/json", "bad_json"),
        (b"\xff\xfe", "application/json", "bad_json"),
        (b"[" * 100_000, "application/json", "bad_json"),
        (b'{"events": {}}', "application/json", "bad_json"),
        (b"[]", "application/json", "bad_json"),
        (b'{"events": []}', "application/json", "empty_batch"),
        (b"", AVRO_BATCH, "empty_batch"),
        (b"\x00\x00\x00\x09abc", AVRO_BATCH, "bad_framing"),
        (body(*[event()] * 4), "application/json", "too_many_events"),
    ],
)
def test_unreadable_bodies_are_refused_whole(raw: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_body(raw, content_type, max_events=3)
    assert err.value.reason == reason and err.value.status == 400


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/avro"])
def test_other_media_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_body(body(event()), content_type)


def test_json_with_charset_parameter_is_json() -> None:
    assert len(parse_body(body(event()), "Application/JSON; charset=utf-8")) == 1


def test_avro_frames_that_do_not_decode_are_rejected_in_place() -> None:
    good = event()
    raw = frame_messages([b"\xc3\x01" + b"\x00" * 8 + b"x", encode_event(good), b"junk"])
    items = parse_body(raw, AVRO_BATCH)
    assert isinstance(items[0], Rejection) and items[0].reason == "unknown_schema"
    assert isinstance(items[1], dict) and items[1]["event_id"] == good["event_id"]
    assert isinstance(items[2], Rejection) and items[2].reason == "undecodable"
    assert [i.index for i in items if isinstance(i, Rejection)] == [0, 2]


@pytest.mark.parametrize("field", ["device_id", "subject_id", "org_id"])
def test_one_forged_event_forbids_the_whole_batch(field: str) -> None:
    items = parse_body(body(event(), event(**{field: "someone-else"})), "application/json")
    with pytest.raises(Forbidden) as err:
        check_identity(items, ME)
    assert err.value.reason == "forged_device" and err.value.status == 403


def test_identity_fields_of_the_wrong_type_are_invalid_not_forged() -> None:
    items = parse_body(body(event(device_id=5)), "application/json")
    check_identity(items, ME)
    plan = plan_batch(items, received_ts=NOW)
    assert [r.reason for r in plan.rejected] == ["invalid_field"]


@pytest.mark.parametrize(
    ("bad", "reason", "detail"),
    [
        (5, "invalid_field", "not an object"),
        (event(event_id="not-a-uuid"), "invalid_field", "event_id"),
        (event(event_id=str(uuid.uuid4()).replace("-", "")), "invalid_field", "event_id"),
        (event(ts="yesterday"), "invalid_field", "ts"),
        (event(ts=1.5), "invalid_field", "ts"),
        (event(seq=True), "invalid_field", "seq"),
        (event(seq=2**64), "invalid_field", "seq"),
        (event(payload={"type": "Teleport"}), "invalid_field", "payload"),
        (event(payload=[1]), "invalid_field", "payload"),
        (event(app={"window_title": None}), "invalid_field", "app"),
        (
            event(
                payload={
                    "type": "KeyInput",
                    "key": None,
                    "text": "x",
                    "modifiers": [],
                    "is_secure_field": False,
                    "count": 0,
                }
            ),
            "invalid_field",
            "",
        ),
        (
            event(app={"app_name": "x" * 300_000, "window_title": None, "url_host": None}),
            "too_large",
            "bytes",
        ),
    ],
)
def test_invalid_events_are_rejected_and_their_neighbours_published(
    bad: Any, reason: str, detail: str
) -> None:
    good = event()
    items = parse_body(body(good, bad, good), "application/json")
    check_identity(items, ME)
    plan = plan_batch(items, received_ts=NOW)
    assert plan.total == 3
    assert [(r.index, r.reason) for r in plan.rejected] == [(1, reason)]
    assert detail in plan.rejected[0].detail
    assert [r.index for r in plan.records] == [0, 2]


def test_accepted_events_are_stamped_with_received_ts_and_keyed_by_device() -> None:
    sent = event(received_ts=42)
    plan = plan_batch(parse_body(body(sent), "application/json"), received_ts=NOW)
    (record,) = plan.records
    assert record.key == b"dev-a" and record.event_id == sent["event_id"]
    decoded = decode_event(record.value)
    assert {name: decoded[name] for name in sent} == {**sent, "received_ts": NOW}


def _planned(*events: dict[str, Any]) -> list[Any]:
    plan = plan_batch(parse_body(body(*events), "application/json"), received_ts=NOW)
    assert plan.rejected == []
    return plan.records


def _ids() -> Any:
    return iter(f"batch-{i}" for i in range(100)).__next__


def test_a_request_becomes_one_device_batch_record_with_every_accepted_event() -> None:
    sent = [event(seq=seq) for seq in (1, 2, 3)]
    (record,) = device_batches(_planned(*sent), new_batch_id=_ids(), sent_ts=NOW + 5)
    assert record.key == b"dev-a"
    decoded = decode_capture(record.value)
    assert decoded.rejected == []
    assert [e["event_id"] for e in decoded.events] == [e["event_id"] for e in sent]
    assert all(e["received_ts"] == NOW for e in decoded.events)
    header = decoded.header
    assert (header.batch_id, header.device_id, header.subject_id, header.org_id) == (
        "batch-0",
        "dev-a",
        "sub-a",
        "org-a",
    )
    assert (header.first_seq, header.last_seq, header.sent_ts) == (1, 3, NOW + 5)
    assert record.indexes == (0, 1, 2)


def test_events_out_of_seq_order_or_repeated_keep_their_order_across_batches() -> None:
    # One by one, the stream marks 3 and 4 as regressions and drops the repeated 4:
    # split where the seq does not increase, the batches reach it the same way.
    again = event(seq=4)
    records = _planned(event(seq=5), event(seq=3), again, again, event(seq=6))
    batches = device_batches(records, new_batch_id=_ids(), sent_ts=NOW)
    seqs = [[e["seq"] for e in decode_capture(b.value).events] for b in batches]
    assert seqs == [[5], [3, 4], [4, 6]]
    assert all(decode_capture(b.value).rejected == [] for b in batches)


def test_records_of_several_devices_become_one_batch_each() -> None:
    records = _planned(event(seq=1), event(seq=2))
    other = [replace(r, key=b"dev-b") for r in _planned(event(seq=1, device_id="dev-b"))]
    batches = device_batches([*records, *other], new_batch_id=_ids(), sent_ts=NOW)
    assert [(b.key, len(decode_capture(b.value).events)) for b in batches] == [
        (b"dev-a", 2),
        (b"dev-b", 1),
    ]


def test_a_request_over_the_batch_limits_is_cut_into_batches_under_them() -> None:
    records = _planned(*[event(seq=seq) for seq in range(10)])
    by_events = device_batches(records, new_batch_id=_ids(), sent_ts=NOW, max_events=4)
    assert [len(decode_capture(b.value).events) for b in by_events] == [4, 4, 2]
    one = len(records[0].value)
    by_bytes = device_batches(records, new_batch_id=_ids(), sent_ts=NOW, max_bytes=4096 + 3 * one)
    assert [len(decode_capture(b.value).events) for b in by_bytes] == [3, 3, 3, 1]
    seqs = [e["seq"] for b in by_bytes for e in decode_capture(b.value).events]
    assert seqs == list(range(10))
