"""Single-object encode/decode of every record: round trips, versions, typed failures."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest

from schemas import codec
from schemas.errors import InvalidField, SchemaError, Undecodable, UnknownSchema
from schemas.registry import default_registry
from tests.unit.schemas.schemas_samples import (
    ACTION,
    LATE,
    MINUTE,
    PAYLOADS,
    SESSION,
    TS,
    consent,
    event,
)


def _raw(name: str, version: int, datum: dict[str, Any]) -> bytes:
    """Bytes as another (lenient) writer would produce them for that exact version."""
    sv = default_registry().get(name, version)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, sv.parsed, datum)
    return sv.single_object_header + body.getvalue()


@pytest.mark.parametrize("payload_type", sorted(PAYLOADS))
def test_every_payload_type_round_trips(payload_type: str) -> None:
    original = event(payload_type)
    data = codec.encode_event(original)
    assert data[:2] == b"\xc3\x01"
    assert codec.decode_event(data) == original


@pytest.mark.parametrize(
    ("name", "datum"),
    [
        ("ConsentPolicy", consent()),
        ("Session", SESSION),
        ("MinuteAggregate", MINUTE),
        ("Action", ACTION),
        ("LateEvent", LATE),
    ],
)
def test_other_records_round_trip(name: str, datum: dict[str, Any]) -> None:
    assert codec.decode(codec.encode(name, datum)) == (name, datum)


def test_consent_helpers_round_trip() -> None:
    policy = consent(scopes=[], reason="left the team")
    assert codec.decode_consent(codec.encode_consent(policy)) == policy


def test_optional_fields_may_be_omitted_and_decode_to_their_defaults() -> None:
    minimal = event("Scroll")
    for optional in ("received_ts", "redactions", "consent_version", "client_version"):
        del minimal[optional]
    decoded = codec.decode_event(codec.encode_event(minimal))
    assert decoded["received_ts"] is None
    assert decoded["redactions"] == []
    assert decoded["consent_version"] is None
    assert decoded["client_version"] is None


def test_event_written_with_released_v1_reads_into_current_v2() -> None:
    v1_event = event("MouseClick")
    del v1_event["client_version"]
    wire = copy.deepcopy(v1_event)
    wire["payload"] = ("candor.capture.v1.MouseClick", wire["payload"])
    decoded = codec.decode_event(_raw("CaptureEvent", 1, wire))
    assert decoded == {**v1_event, "client_version": None}


def test_timestamps_stay_integer_microseconds() -> None:
    decoded = codec.decode_event(codec.encode_event(event()))
    assert decoded["ts"] == TS and type(decoded["ts"]) is int


def _with(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    datum = copy.deepcopy(base if base is not None else event())
    *parents, last = path.split(".")
    node = datum
    for part in parents:
        node = node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return datum


_DELETE = object()

BAD_EVENTS = [
    ("seq", "42", "seq"),
    ("seq", True, "seq"),
    ("seq", 1.5, "seq"),
    ("seq", 2**64, "seq"),
    ("ts", None, "ts"),
    ("event_id", _DELETE, "event_id"),
    ("event_id", b"raw", "event_id"),
    ("app.app_name", _DELETE, "app.app_name"),
    ("app", "code", "app"),
    ("received_ts", "soon", "received_ts"),
    ("redactions", "email", "redactions"),
    ("redactions", [1], "redactions[]"),
    ("payload.type", "Telepathy", "payload.type"),
    ("payload.type", _DELETE, "payload.type"),
    ("payload.count", _DELETE, "payload.count"),
    ("payload.is_secure_field", "no", "payload.is_secure_field"),
    ("payload.modifiers", ["hyper"], "payload.modifiers[]"),
    ("payload.text", "\ud800", "payload.text"),
    ("payload.count", 0, "payload.count"),
    ("payload.modifiers", ["ctrl", "ctrl"], "payload.modifiers"),
    ("seq", -1, "seq"),
]


@pytest.mark.parametrize(
    ("path", "value", "field"), BAD_EVENTS, ids=[f"{p}={v!r:.20}" for p, v, _ in BAD_EVENTS]
)
def test_encoding_a_bad_event_raises_invalid_field_naming_the_field(
    path: str, value: Any, field: str
) -> None:
    with pytest.raises(InvalidField) as caught:
        codec.encode_event(_with(path, value))
    assert caught.value.field == field
    assert caught.value.reason == "invalid_field"
    assert field in str(caught.value)


def test_bad_nested_path_point_is_located() -> None:
    bad = event("MouseMove")
    bad["payload"]["path"][1]["x"] = "left"
    with pytest.raises(InvalidField, match=r"payload\.path\[\]\.x"):
        codec.encode_event(bad)


@pytest.mark.parametrize(
    ("name", "datum", "field"),
    [
        ("ConsentPolicy", consent(scopes=["mind_reading"]), "scopes"),
        ("MinuteAggregate", {**MINUTE, "window_start": MINUTE["window_start"] + 1}, "window_start"),
        ("Session", {**SESSION, "end_ts": SESSION["start_ts"] - 1}, "end_ts"),
        ("Action", {**ACTION, "kind": "dance"}, "kind"),
        ("Action", {**ACTION, "event_count": 0}, "event_count"),
    ],
)
def test_out_of_domain_records_are_refused(name: str, datum: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        codec.encode(name, datum)
    assert caught.value.field == field


def test_unchecked_encoding_skips_domains_only_and_readers_still_refuse() -> None:
    out_of_domain = {**SESSION, "end_ts": SESSION["start_ts"] - 1}
    data = codec.encode("Session", out_of_domain, check_domains=False)
    with pytest.raises(InvalidField, match="end_ts"):
        codec.decode(data)
    with pytest.raises(InvalidField):
        codec.encode("Session", {**SESSION, "end_ts": "soon"}, check_domains=False)


def test_unknown_record_name_raises_unknown_schema() -> None:
    with pytest.raises(UnknownSchema):
        codec.encode("Telemetry", {})


def test_decoded_value_out_of_domain_raises_invalid_field() -> None:
    wire = event("KeyInput")
    wire["payload"]["count"] = 0
    wire["payload"] = ("candor.capture.v1.KeyInput", wire["payload"])
    with pytest.raises(InvalidField, match=r"payload\.count"):
        codec.decode_event(_raw("CaptureEvent", 2, wire))


GOOD = codec.encode_event(event())


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", Undecodable),
        (b"\xc3", Undecodable),
        (b"\x00" + GOOD[1:], Undecodable),
        (GOOD[:10], Undecodable),
        (GOOD[:-3], Undecodable),
        (GOOD + b"\x00", Undecodable),
        (GOOD[:2] + b"\xff" * 8 + GOOD[10:], UnknownSchema),
        (codec.encode_consent(consent()), UnknownSchema),
    ],
    ids=[
        "empty",
        "one-byte",
        "bad-marker",
        "header-only",
        "truncated",
        "trailing",
        "unknown-fp",
        "other-record",
    ],
)
def test_bad_bytes_raise_typed_errors(data: bytes, error: type[SchemaError]) -> None:
    with pytest.raises(error) as caught:
        codec.decode_event(data)
    assert caught.value.reason == error.reason


def test_decode_many_returns_errors_in_place() -> None:
    results = codec.decode_many([GOOD, b"junk", codec.encode_consent(consent())])
    assert results[0] == codec.decode_event(GOOD)
    assert isinstance(results[1], Undecodable)
    assert isinstance(results[2], UnknownSchema)
