"""DeviceBatch records and `decode_capture`: batches and today's single events read alike,
whole-record failures raise, one bad event is rejected alone by index."""

from __future__ import annotations

import io
import uuid
from typing import Any

import fastavro
import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import batch as batch_module
from schemas import codec
from schemas.batch import (
    DEVICE_BATCH,
    MAX_RECORD_BYTES,
    _pinned_event_header,
    batch_header,
    decode_capture,
    encode_batch,
    splice_batch,
)
from schemas.errors import (
    BatchHeaderMismatch,
    BatchTooLarge,
    DuplicateSeq,
    InvalidField,
    SchemaError,
    TruncatedBatch,
    Undecodable,
    UnknownSchema,
)
from schemas.registry import _strip_logical_types, default_registry
from tests.unit.schemas.schemas_samples import PAYLOADS, event


def events(n: int, first_seq: int = 100) -> list[dict[str, Any]]:
    kinds = sorted(PAYLOADS)
    return [
        event(kinds[i % len(kinds)], seq=first_seq + i, event_id=str(uuid.UUID(int=i + 1)))
        for i in range(n)
    ]


def batch(evs: list[dict[str, Any]], **header: Any) -> bytes:
    """A DeviceBatch written without any domain check (so tests can write bad ones)."""
    datum = {**batch_header(evs, batch_id="b-1", sent_ts=7), **header, "events": evs}
    return codec.encode(DEVICE_BATCH, datum, check_domains=False)


def test_a_batch_round_trips_with_its_header_and_events_in_order() -> None:
    evs = events(9)
    decoded = decode_capture(encode_batch(batch_header(evs, batch_id="b-1", sent_ts=7), evs))
    assert decoded.events == evs
    assert decoded.rejected == []
    header = decoded.header
    assert (header.batch_id, header.device_id, header.first_seq, header.last_seq) == (
        "b-1",
        "dev-9",
        100,
        108,
    )
    assert not header.single and decoded.size == 9


def test_splicing_pre_encoded_events_writes_the_same_bytes_as_encoding_them() -> None:
    evs = events(5)
    header = batch_header(evs, batch_id="b-2", sent_ts=1, client_version="2.0.0")
    assert splice_batch(header, [codec.encode_event(e) for e in evs]) == encode_batch(header, evs)


def test_splicing_refuses_an_event_of_another_capture_event_version() -> None:
    v1 = default_registry().get("CaptureEvent", 1)
    body = io.BytesIO()
    old = {k: v for k, v in event().items() if k != "client_version"}
    old["payload"] = (
        "candor.capture.v1.KeyInput",
        {k: v for k, v in old["payload"].items() if k != "type"},
    )
    fastavro.schemaless_writer(body, v1.parsed, old)
    header = batch_header([event()], batch_id="b", sent_ts=1)
    with pytest.raises(InvalidField, match=r"events\[0\]"):
        splice_batch(header, [v1.single_object_header + body.getvalue()])


def test_the_batch_pins_the_current_capture_event() -> None:
    # A new CaptureEvent version needs a new DeviceBatch version pinning it:
    # writers splice events encoded with the current CaptureEvent.
    pinned = _pinned_event_header(codec.default_codec())
    assert pinned == codec.default_codec().current("CaptureEvent").single_object_header
    evs = events(1)
    header = batch_header(evs, batch_id="b", sent_ts=1)
    assert decode_capture(splice_batch(header, [codec.encode_event(evs[0])])).events == evs


@pytest.mark.parametrize("payload_type", sorted(PAYLOADS))
def test_records_of_todays_writer_decode_as_batches_of_one(payload_type: str) -> None:
    single = event(payload_type)
    decoded = decode_capture(codec.encode_event(single))
    assert decoded.events == [single] and decoded.rejected == []
    header = decoded.header
    assert header.single
    assert (header.batch_id, header.org_id, header.subject_id, header.device_id) == (
        single["event_id"],
        "org-1",
        "subj-123",
        "dev-9",
    )
    assert header.first_seq == header.last_seq == single["seq"]
    assert header.sent_ts == single["received_ts"]


def test_a_released_v1_capture_event_record_decodes_as_a_batch_of_one() -> None:
    v1 = default_registry().get("CaptureEvent", 1)
    body = io.BytesIO()
    old = {k: v for k, v in event("Scroll").items() if k != "client_version"}
    old["payload"] = ("candor.capture.v1.Scroll", {"dx": 1, "dy": 2})
    fastavro.schemaless_writer(body, v1.parsed, old)
    decoded = decode_capture(v1.single_object_header + body.getvalue())
    (got,) = decoded.events
    assert got["client_version"] is None and got["payload"] == {"type": "Scroll", "dx": 1, "dy": 2}
    assert decoded.header.single and decoded.header.client_version is None


def test_a_single_event_out_of_its_domain_still_fails_the_record() -> None:
    bad = codec.encode(
        "CaptureEvent",
        event("KeyInput", payload={**PAYLOADS["KeyInput"], "count": 0}),
        check_domains=False,
    )
    with pytest.raises(InvalidField):
        decode_capture(bad)


def event_ends(evs: list[dict[str, Any]]) -> list[int]:
    """The offset just after each event in `batch(evs)` (events follow the header
    and the array count; each is its single-object encoding minus 10 bytes)."""
    data = batch(evs)
    end = len(data) - 1  # the array's terminating 0
    ends = []
    for e in reversed(evs):
        ends.append(end)
        end -= len(codec.encode("CaptureEvent", e, check_domains=False)) - 10
    return ends[::-1]


@pytest.mark.parametrize(
    ("cut_into", "kept"),
    [
        (5, 5),  # only the terminating 0 is cut: the last event cannot be told complete
        (4, 4),  # inside the last event
        (2, 2),
        (1, 1),  # inside the second event: the first alone stands
    ],
)
def test_a_truncated_batch_keeps_the_events_read_before_the_cut(cut_into: int, kept: int) -> None:
    evs = events(6)
    data = batch(evs)
    ends = event_ends(evs)
    cut = len(data) - 1 if cut_into == 5 else ends[cut_into] - 3
    decoded = decode_capture(data[:cut])
    assert decoded.events == evs[:kept] and decoded.rejected == []
    lost = decoded.lost
    assert lost is not None and isinstance(lost.error, TruncatedBatch)
    assert lost.reason == "truncated_batch" and isinstance(lost.error, Undecodable)
    assert (lost.first_index, lost.count, lost.seqs) == (kept, 6 - kept, (100 + kept, 105))
    assert decoded.header.batch_id == "b-1" and decoded.size == kept


def test_a_truncated_batch_keeps_its_per_event_refusals_before_the_cut() -> None:
    evs = events(6)
    evs[1]["seq"] = evs[0]["seq"]  # a repeated seq, refused alone
    evs[2]["device_id"] = "dev-other"  # another device, refused alone
    data = batch(evs)
    decoded = decode_capture(data[: event_ends(evs)[4] - 1])
    assert [(r.index, r.error.reason) for r in decoded.rejected] == [
        (1, "duplicate_seq"),
        (2, "batch_header_mismatch"),
    ]
    assert [e["event_id"] for e in decoded.events] == [evs[0]["event_id"], evs[3]["event_id"]]
    assert decoded.lost is not None
    assert (decoded.lost.first_index, decoded.lost.count) == (4, 2)


def test_a_damaged_array_count_is_bounded_by_the_headers_seq_range() -> None:
    evs = events(6)
    data = bytearray(batch(evs))
    first_event_start = event_ends(evs)[0] - (
        len(codec.encode("CaptureEvent", evs[0], check_domains=False)) - 10
    )
    assert data[first_event_start - 1] == 12  # the count 6, zig-zag encoded
    data[first_event_start - 1 : first_event_start] = b"\xfe\xff\xff\x0f"  # 2**31 - 1
    cut = bytes(data)[: event_ends(evs)[1] + 3 + 5]  # events 0 and 1 whole
    decoded = decode_capture(cut)
    assert decoded.events == evs[:2]
    assert decoded.lost is not None and decoded.lost.count == 4  # 100..105 less the two read


@pytest.mark.parametrize("into_event", [0, 1, 2])
def test_a_batch_cut_in_its_header_or_first_event_is_refused_whole(into_event: int) -> None:
    evs = events(3)
    data = batch(evs)
    first_event_start = event_ends(evs)[0] - (
        len(codec.encode("CaptureEvent", evs[0], check_domains=False)) - 10
    )
    cut = [first_event_start - 20, first_event_start, event_ends(evs)[0] - 1][into_event]
    with pytest.raises(TruncatedBatch) as raised:
        decode_capture(data[:cut])
    assert raised.value.reason == "truncated_batch"
    assert isinstance(raised.value, Undecodable)


def test_trailing_bytes_after_a_whole_batch_lose_nothing_but_are_reported() -> None:
    evs = events(3)
    decoded = decode_capture(batch(evs) + b"\x07")
    assert decoded.events == evs
    assert decoded.lost is not None and decoded.lost.reason == "truncated_batch"
    assert (decoded.lost.first_index, decoded.lost.count, decoded.lost.seqs) == (3, None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [("subject_id", "someone-else"), ("device_id", "dev-other"), ("org_id", "org-2")],
)
def test_an_event_naming_another_identity_is_rejected_alone(field: str, value: str) -> None:
    evs = events(5)
    evs[3][field] = value
    decoded = decode_capture(batch(evs))
    (rejected,) = decoded.rejected
    assert rejected.index == 3
    assert isinstance(rejected.error, BatchHeaderMismatch)
    assert rejected.error.reason == "batch_header_mismatch" and rejected.error.field == field
    assert rejected.event["event_id"] == evs[3]["event_id"]
    assert decoded.events == evs[:3] + evs[4:]


def test_an_event_outside_the_headers_seq_range_is_rejected_alone() -> None:
    evs = events(4)
    decoded = decode_capture(batch(evs, last_seq=102))
    assert [r.index for r in decoded.rejected] == [3]
    assert decoded.rejected[0].error.reason == "batch_header_mismatch"
    assert [e["seq"] for e in decoded.events] == [100, 101, 102]


def test_a_repeated_seq_is_rejected_and_the_first_event_with_it_kept() -> None:
    evs = events(5)
    evs[2]["seq"] = evs[4]["seq"] = 101
    decoded = decode_capture(batch(evs))
    assert [(r.index, type(r.error)) for r in decoded.rejected] == [
        (2, DuplicateSeq),
        (4, DuplicateSeq),
    ]
    assert decoded.rejected[0].error.reason == "duplicate_seq"
    assert [e["event_id"] for e in decoded.events] == [
        evs[0]["event_id"],
        evs[1]["event_id"],
        evs[3]["event_id"],
    ]


def test_an_event_out_of_its_domain_is_rejected_alone() -> None:
    evs = events(3)
    evs[1] = {**evs[1], "payload": {**PAYLOADS["KeyInput"], "count": 0}}
    decoded = decode_capture(batch(evs))
    (rejected,) = decoded.rejected
    assert (rejected.index, rejected.error.reason, rejected.error.field) == (
        1,
        "invalid_field",
        "payload.count",
    )
    assert len(decoded.events) == 2


def test_a_batch_over_the_byte_limit_keeps_the_events_that_fit() -> None:
    evs = events(20)
    data = batch(evs)
    ends = event_ends(evs)
    decoded = decode_capture(data, max_bytes=ends[11])  # events 0..11 end within it
    assert decoded.events == evs[:12] and decoded.rejected == []
    lost = decoded.lost
    assert lost is not None and isinstance(lost.error, BatchTooLarge)
    assert lost.reason == "batch_too_large"
    assert (lost.first_index, lost.count, lost.seqs) == (12, 8, (112, 119))
    assert decode_capture(data, max_bytes=len(data)).lost is None
    assert decode_capture(data, max_bytes=len(data)).size == 20


def test_a_batch_over_both_limits_keeps_what_fits_both() -> None:
    evs = events(20)
    data = batch(evs)
    decoded = decode_capture(data, max_bytes=event_ends(evs)[11], max_events=7)
    assert decoded.events == evs[:7]
    assert decoded.lost is not None and decoded.lost.reason == "batch_too_large"
    assert (decoded.lost.first_index, decoded.lost.count) == (7, 13)


def test_a_batch_over_the_event_limit_keeps_the_first_events() -> None:
    evs = events(11)
    evs[10]["seq"] = 140  # the lost seqs are read from the lost events themselves
    data = batch(evs)
    decoded = decode_capture(data, max_events=10)
    assert decoded.events == evs[:10]
    lost = decoded.lost
    assert lost is not None and lost.reason == "batch_too_large"
    assert (lost.first_index, lost.count, lost.seqs) == (10, 1, (140, 140))
    assert decode_capture(data, max_events=11).size == 11


def test_a_batch_whose_first_event_is_over_the_byte_limit_is_refused_whole() -> None:
    evs = events(3)
    with pytest.raises(BatchTooLarge) as raised:
        decode_capture(batch(evs), max_bytes=event_ends(evs)[0] - 1)
    assert raised.value.reason == "batch_too_large"


def test_a_single_event_over_the_byte_limit_is_refused_whole() -> None:
    data = codec.encode_event(events(1)[0])
    with pytest.raises(BatchTooLarge):
        decode_capture(data, max_bytes=len(data) - 1)


def test_a_record_over_the_ceiling_is_refused_unread() -> None:
    data = batch(events(2))
    huge = data[:-1] + bytes(MAX_RECORD_BYTES)  # never read: refused by its size
    with pytest.raises(BatchTooLarge) as raised:
        decode_capture(huge, max_bytes=MAX_RECORD_BYTES * 2)
    assert "read at all" in str(raised.value)


@pytest.mark.parametrize(
    ("header", "field"),
    [({"events": []}, "events"), ({"last_seq": 1}, "last_seq"), ({"first_seq": -1}, "first_seq")],
)
def test_a_header_out_of_its_domain_fails_the_record(header: dict[str, Any], field: str) -> None:
    evs = events(2, first_seq=5)
    datum = {**batch_header(evs, batch_id="b", sent_ts=1), "events": evs, **header}
    data = codec.encode(DEVICE_BATCH, datum, check_domains=False)
    with pytest.raises(InvalidField) as raised:
        decode_capture(data)
    assert raised.value.field == field
    with pytest.raises(InvalidField):
        codec.encode(DEVICE_BATCH, datum)


def test_a_tombstone_is_undecodable_not_a_crash() -> None:
    with pytest.raises(Undecodable):
        decode_capture(None)  # type: ignore[arg-type]


def test_another_record_on_the_topic_is_an_unknown_schema() -> None:
    policy = {
        "subject_id": "s",
        "org_id": "o",
        "version": 1,
        "scopes": [],
        "changed_by": "s",
        "changed_at": 1,
        "reason": None,
    }
    with pytest.raises(UnknownSchema):
        decode_capture(codec.encode_consent(policy))


def test_every_failure_has_its_own_reason_under_the_schema_error_root() -> None:
    classes: list[type[SchemaError]] = [
        TruncatedBatch,
        BatchTooLarge,
        BatchHeaderMismatch,
        DuplicateSeq,
    ]
    assert all(issubclass(c, SchemaError) for c in classes)
    assert len({c.reason for c in classes} | {"invalid_field", "undecodable"}) == 6


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_damaged_batches_raise_only_schema_errors(data: st.DataObject) -> None:
    evs = events(4)
    original = batch(evs)
    at = data.draw(st.integers(0, len(original) - 1))
    flipped = bytearray(original)
    flipped[at] ^= data.draw(st.integers(1, 255))
    for cut, damaged in ((False, bytes(flipped)), (True, original[:at])):
        try:
            decoded = decode_capture(damaged)
        except SchemaError:
            continue
        assert decoded.size >= 1
        if cut and decoded.lost is not None:
            # what a cut batch keeps is exactly what was written, up to the cut
            assert decoded.events == evs[: decoded.size]
            assert decoded.lost.first_index == decoded.size


def test_the_reference_avro_package_reads_a_batch_we_write() -> None:
    import json

    import avro.io
    import avro.schema

    evs = [
        event(p, seq=i, event_id=str(uuid.UUID(int=i + 1))) for i, p in enumerate(sorted(PAYLOADS))
    ]
    data = encode_batch(batch_header(evs, batch_id="b-9", sent_ts=3), evs)
    sv = default_registry().latest(DEVICE_BATCH)
    schema = avro.schema.parse(json.dumps(_strip_logical_types(sv.expanded)))
    read: dict[str, Any] = avro.io.DatumReader(schema).read(  # type: ignore[assignment]
        avro.io.BinaryDecoder(io.BytesIO(data[10:]))
    )
    assert read["batch_id"] == "b-9" and (read["first_seq"], read["last_seq"]) == (0, 8)
    assert [e["event_id"] for e in read["events"]] == [e["event_id"] for e in evs]
    assert [e["payload"] for e in read["events"]] == [
        {k: v for k, v in e["payload"].items() if k != "type"} for e in evs
    ]


def _outcome(decoded: Any) -> Any:
    rejected = [(r.index, type(r.error), str(r.error), r.event) for r in decoded.rejected]
    return decoded.header, decoded.events, rejected, decoded.lost


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_one_pass_check_of_a_batch_finds_what_the_per_event_loop_finds(
    data: st.DataObject,
) -> None:
    # batches near the edges: seqs repeated, out of order or outside the header's
    # range, another identity, values out of their domains
    n = data.draw(st.integers(1, 6))
    evs = events(n)
    for e in evs:
        if data.draw(st.integers(0, 5)) == 0:
            e["seq"] = data.draw(st.sampled_from([e["seq"] - 1, e["seq"] + 1, 99, 106, -1]))
        if data.draw(st.integers(0, 7)) == 0:
            field = data.draw(st.sampled_from(["org_id", "subject_id", "device_id"]))
            e[field] = "other"
        if data.draw(st.integers(0, 7)) == 0:
            e["ts"] = -1
        if e["payload"]["type"] == "KeyInput" and data.draw(st.booleans()):
            e["payload"]["count"] = 0
    data_ = batch(evs, first_seq=100, last_seq=100 + n - 1)
    one_pass = decode_capture(data_)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_module, "_all_pass", lambda header, events: False)
        per_event = decode_capture(data_)
    assert _outcome(one_pass) == _outcome(per_event)
    hypothesis.event("all pass" if not one_pass.rejected else "some refused")
