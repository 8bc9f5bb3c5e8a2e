"""Unions of records read without fastavro's ``(branch, record)`` tuples give the
datum read with them: every payload type, random events, batches, damaged bytes,
and schemas where the branch cannot be told by a first field (tuples kept)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import codec
from schemas.batch import encode_batch
from schemas.errors import SchemaError
from schemas.registry import Registry, default_registry
from tests.unit.schemas.schemas_samples import PAYLOADS, event

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _with_tuples(registry: Registry) -> codec.Codec:
    """A codec that reads every union with tuples: how records were read before."""
    with_tuples = codec.Codec(registry)
    for reader in with_tuples._readers.values():
        reader._by_first = None
        reader._compiled = None  # fastavro alone, as before `schemas.reader`
    return with_tuples


NEW = codec.default_codec()
OLD = _with_tuples(default_registry())


def _outcome(reader: codec.Codec, data: bytes) -> Any:
    try:
        return reader.decode(data)
    except SchemaError as err:
        return (type(err), str(err))


def _same(data: bytes) -> None:
    assert _outcome(NEW, data) == _outcome(OLD, data)


def test_the_current_capture_records_read_without_tuples() -> None:
    for name in ("CaptureEvent", "DeviceBatch", "CleanBatch"):
        assert NEW._by_version[(NEW.current(name).fullname, NEW.current(name).version)]._by_first
    # a released older writer is resolved into the current version, with tuples
    v1 = default_registry().get("CaptureEvent", 1)
    assert NEW._by_version[(v1.fullname, 1)]._by_first is None


@pytest.mark.parametrize("payload_type", sorted(PAYLOADS))
def test_each_payload_type_reads_as_with_tuples(payload_type: str) -> None:
    data = codec.encode_event(event(payload_type))
    assert NEW.decode(data) == OLD.decode(data) == ("CaptureEvent", event(payload_type))


_text = st.text(max_size=12)
_opt_text = st.none() | _text
_int = st.integers(-(2**31), 2**31 - 1)
_PAYLOAD_VALUES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "WindowFocus": st.fixed_dictionaries({"previous_app_name": _opt_text}),
    "KeyInput": st.fixed_dictionaries(
        {
            "key": _opt_text,
            "text": _opt_text,
            "modifiers": st.lists(st.sampled_from(["ctrl", "alt", "shift", "meta"]), max_size=3),
            "is_secure_field": st.booleans(),
            "count": _int,
        }
    ),
    "MouseMove": st.fixed_dictionaries(
        {"path": st.lists(st.fixed_dictionaries({"dt_ms": _int, "x": _int, "y": _int}), max_size=3)}
    ),
    "MouseClick": st.fixed_dictionaries(
        {
            "button": st.sampled_from(["left", "right", "middle"]),
            "x": _int,
            "y": _int,
            "double": st.booleans(),
        }
    ),
    "Scroll": st.fixed_dictionaries({"dx": _int, "dy": _int}),
    "ScreenFrame": st.fixed_dictionaries(
        {"frame_id": _text, "ref": _text, "width": _int, "height": _int, "phash": _text}
    ),
    "IdeEdit": st.fixed_dictionaries(
        {
            "path_hash": _text,
            "language": _text,
            "chars_inserted": _int,
            "chars_deleted": _int,
            "diff": _opt_text,
        }
    ),
    "TerminalCommand": st.fixed_dictionaries(
        {"command": _text, "exit_code": st.none() | _int, "cwd_hash": _text}
    ),
    "ActivityState": st.fixed_dictionaries(
        {"state": st.sampled_from(["active", "idle", "locked"])}
    ),
}


@st.composite
def _events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(_PAYLOAD_VALUES)))
    payload = {"type": kind, **draw(_PAYLOAD_VALUES[kind])}
    return event(
        kind,
        seq=draw(st.integers(-5, 2**40)),
        ts=draw(st.integers(-5, 2**60)),
        received_ts=draw(st.none() | st.integers(-5, 2**60)),
        app={"app_name": draw(_text), "window_title": draw(_opt_text), "url_host": draw(_opt_text)},
        payload=payload,
        redactions=draw(st.lists(_text, max_size=2)),
        consent_version=draw(st.none() | st.integers(-5, 2**40)),
        client_version=draw(_opt_text),
    )


@SETTINGS
@given(_events())
def test_random_events_read_as_with_tuples(datum: dict[str, Any]) -> None:
    # out-of-domain values too: both readers must refuse them alike
    _same(codec.encode("CaptureEvent", datum, check_domains=False))


@SETTINGS
@given(st.lists(_events(), min_size=1, max_size=6))
def test_random_batches_read_as_with_tuples(events: list[dict[str, Any]]) -> None:
    header = {
        "batch_id": "b",
        "org_id": "org-1",
        "subject_id": "subj-123",
        "device_id": "dev-9",
        "client_version": None,
        "sent_ts": 1,
        "first_seq": 0,
        "last_seq": 2**40,
    }
    body = codec.encode("DeviceBatch", {**header, "events": events}, check_domains=False)
    _same(body)


_VALID = [codec.encode_event(event(p)) for p in sorted(PAYLOADS)] + [
    encode_batch(
        {
            "batch_id": "b",
            "org_id": "org-1",
            "subject_id": "subj-123",
            "device_id": "dev-9",
            "client_version": None,
            "sent_ts": 1,
            "first_seq": 42,
            "last_seq": 42 + len(PAYLOADS),
        },
        [event(p, seq=42 + i) for i, p in enumerate(sorted(PAYLOADS))],
    )
]


@SETTINGS
@given(st.sampled_from(_VALID), st.data())
def test_damaged_bytes_read_as_with_tuples(message: bytes, data: st.DataObject) -> None:
    mutated = bytearray(message)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(10, len(mutated) - 1))
        mutated[index] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(10, len(mutated)))
    _same(bytes(mutated[:cut]))


def _write(root: Path, record: dict[str, Any]) -> None:
    (root / "t").mkdir(parents=True, exist_ok=True)
    (root / "t" / f"{record['name']}.v1.avsc").write_text(json.dumps(record))


def _branch(name: str, *fields: str, kind: str = "int") -> dict[str, Any]:
    return {
        "type": "record",
        "name": name,
        "namespace": "t",
        "fields": [{"name": f, "type": kind} for f in fields],
    }


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        (
            [{"name": "u", "type": [_branch("A", "x", "y"), _branch("B", "x", "z")]}],
            "two branches open with the same field",
        ),
        (
            [{"name": "u", "type": [_branch("A"), _branch("B", "x")]}],
            "a branch without fields",
        ),
        (
            [
                {"name": "u", "type": [_branch("A", "x"), _branch("B", "y")]},
                {
                    "name": "e",
                    "type": ["null", {"type": "enum", "name": "E", "symbols": ["p", "q"]}],
                },
            ],
            "another union holds a named type",
        ),
    ],
)
def test_unions_whose_branch_a_first_field_cannot_tell_are_read_with_tuples(
    tmp_path: Path, fields: list[dict[str, Any]], why: str
) -> None:
    _write(tmp_path, {"type": "record", "name": "R", "namespace": "t", "fields": fields})
    registry = Registry.load(tmp_path)
    assert codec._first_field_plan(registry.latest("R")) is None, why
    reader = codec.Codec(registry)
    datum: dict[str, Any] = {"u": {"type": "B", "x": 1, "y": 2, "z": 3}, "e": "q"}
    datum = {f["name"]: datum[f["name"]] for f in fields}
    data = reader.encode("R", datum)
    assert reader.decode(data) == _with_tuples(registry).decode(data)
    assert reader.decode(data)[1]["u"]["type"] == "B"


def test_a_union_with_distinct_first_fields_is_read_without_tuples(tmp_path: Path) -> None:
    union = [_branch("A", "x", "y"), _branch("B", "y", "x"), _branch("C", "z", kind="string")]
    _write(
        tmp_path,
        {
            "type": "record",
            "name": "R",
            "namespace": "t",
            "fields": [
                {"name": "u", "type": union},
                {"name": "n", "type": ["null", "long"]},
            ],
        },
    )
    registry = Registry.load(tmp_path)
    assert codec._first_field_plan(registry.latest("R")) == (
        ("u", {"x": "A", "y": "B", "z": "C"}, ()),
    )
    reader = codec.Codec(registry)
    for value in (
        {"type": "A", "x": 1, "y": 2},
        {"type": "B", "y": 1, "x": 2},
        {"type": "C", "z": "s"},
    ):
        data = reader.encode("R", {"u": value, "n": None})
        assert reader.decode(data) == ("R", {"u": value, "n": None})
