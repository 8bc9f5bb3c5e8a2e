"""The compiled reader (`schemas.reader`) gives what fastavro gives: the same datum
(values, types and key order) or, when it is not sure of the bytes, fastavro's
datum or error, for every Candor record: random data, random and damaged
bytes, numbers at the edges of 64 bits, and the constructs it gives up on."""

from __future__ import annotations

import io
import re
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import codec
from schemas.errors import SchemaError
from schemas.reader import Unsure, compile_reader
from schemas.registry import default_registry
from schemas.writer import encode_long
from tests.unit.schemas.schemas_samples import PAYLOADS, event

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = sorted(default_registry().names())


def _fastavro_only() -> codec.Codec:
    """A codec reading every record with fastavro alone: how records were read before."""
    only = codec.Codec(default_registry())
    for reader in only._readers.values():
        reader._compiled = None
    return only


COMPILED = codec.default_codec()
FASTAVRO = _fastavro_only()


def _exact(value: Any) -> Any:
    """``value`` with dict key order and scalar types made visible to ``==``
    (``True == 1`` and ``{"a": 1, "b": 2} == {"b": 2, "a": 1}`` would hide a difference)."""
    if isinstance(value, dict):
        return ("dict", [(k, _exact(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_exact(v) for v in value])
    if isinstance(value, float):  # exact, and a NaN (damaged bytes may read as one) equal to itself
        return ("float", value.hex())
    return (type(value).__name__, value)


def _outcome(reader: codec.Codec, data: bytes) -> Any:
    try:
        name, datum = reader.decode(data)
    except SchemaError as err:
        # fastavro's messages may name the stream object: its address differs
        return (type(err), re.sub(r" at 0x[0-9a-f]+", "", str(err)))
    return name, _exact(datum)


def _same(data: bytes) -> None:
    assert _outcome(COMPILED, data) == _outcome(FASTAVRO, data)


def test_every_current_record_has_a_compiled_reader() -> None:
    for name in NAMES:
        current = COMPILED.current(name)
        assert COMPILED._by_version[(current.fullname, current.version)]._compiled is not None
    # an older writer is resolved into the current version by fastavro
    v1 = default_registry().get("CaptureEvent", 1)
    assert COMPILED._by_version[(v1.fullname, 1)]._compiled is None


# -- random data of every record, from its schema ----------------------------------

_LONG = st.integers(-(2**63), 2**63 - 1)
_INT = st.integers(-(2**31), 2**31 - 1)
_TEXT = st.text(max_size=70)  # 64 bytes and more: a length of two varint bytes
_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "int": _INT,
    "long": _LONG,
    "float": st.floats(allow_nan=False, width=32),
    "double": st.floats(allow_nan=False),
    "string": _TEXT,
    "bytes": st.binary(max_size=70),
}


def _tagged(records: st.SearchStrategy[Any], name: str) -> st.SearchStrategy[Any]:
    """A union branch's records, tagged with its short name (the writer's in-memory form)."""
    short = name.rpartition(".")[2]
    return records.map(lambda value: {**value, "type": short})


def _strategy(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Random values of the expanded ``schema``, in the in-memory form the writer takes."""
    if isinstance(schema, list):
        if all(isinstance(b, dict) and b.get("type") == "record" for b in schema):
            return st.one_of([_tagged(_strategy(b, named), b["name"]) for b in schema])
        return st.one_of([_strategy(b, named) for b in schema])
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            named[schema["name"]] = schema
            named[schema["name"].rpartition(".")[2]] = schema
            return st.fixed_dictionaries(
                {f["name"]: _strategy(f["type"], named) for f in schema["fields"]}
            )
        if kind == "enum":
            named[schema["name"]] = schema
            named[schema["name"].rpartition(".")[2]] = schema
            return st.sampled_from(schema["symbols"])
        if kind == "array":
            return st.lists(_strategy(schema["items"], named), max_size=4)
        if kind == "map":
            return st.dictionaries(_TEXT, _strategy(schema["values"], named), max_size=3)
        return _strategy(kind, named)
    if schema in _PRIMITIVES:
        return _PRIMITIVES[schema]
    return _strategy(named[schema.rpartition(".")[2]], {**named})


_DATA = {name: _strategy(COMPILED.current(name).expanded, {}) for name in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_random_data_of_each_record_reads_as_with_fastavro(name: str) -> None:
    @SETTINGS
    @given(_DATA[name])
    def check(datum: dict[str, Any]) -> None:
        data = COMPILED.encode(name, datum, check_domains=False)
        _same(data)
        # and damaged: a cut, or a byte changed
        _same(data[: len(data) // 2])
        _same(data[:-1])
        _same(data + b"\x00")

    check()


@SETTINGS
@given(st.sampled_from(NAMES), st.data())
def test_damaged_records_read_as_with_fastavro(name: str, data: st.DataObject) -> None:
    message = bytearray(COMPILED.encode(name, data.draw(_DATA[name]), check_domains=False))
    if len(message) > 10:
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(10, len(message) - 1))
            message[index] ^= data.draw(st.integers(1, 255))
    _same(bytes(message[: data.draw(st.integers(0, len(message)))]))


@SETTINGS
@given(st.sampled_from(NAMES), st.binary(max_size=200))
def test_random_bodies_read_as_with_fastavro(name: str, body: bytes) -> None:
    header = COMPILED.current(name).single_object_header
    _same(header + body)


@pytest.mark.parametrize("payload_type", sorted(PAYLOADS))
def test_each_payload_type_reads_as_with_fastavro(payload_type: str) -> None:
    data = codec.encode_event(event(payload_type))
    assert COMPILED.decode(data) == ("CaptureEvent", event(payload_type))
    _same(data)


# -- the bytes it is not sure of -----------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    encode_long(out, value)
    return bytes(out)


def _reader_of(name: str) -> Any:
    return compile_reader(COMPILED.current(name).parsed)


def test_a_number_of_ten_bytes_is_left_to_fastavro() -> None:
    datum = event("Scroll", seq=2**63 - 1, ts=-(2**63))
    data = codec.encode("CaptureEvent", datum, check_domains=False)
    with pytest.raises(Unsure):
        _reader_of("CaptureEvent")(data, codec.HEADER_SIZE)
    _same(data)
    nine = codec.encode(
        "CaptureEvent", event("Scroll", seq=2**62 - 1, ts=-(2**62)), check_domains=False
    )
    assert _reader_of("CaptureEvent")(nine, codec.HEADER_SIZE)["seq"] == 2**62 - 1
    _same(nine)


@pytest.mark.parametrize(
    "body",
    [
        # a negative array block count (a block with its byte size: fastavro reads it)
        _varint(-1) + _varint(2) + b"\x02a" + _varint(0),
        _varint(-1),  # a negative string length
        b"",
    ],
)
def test_negative_counts_and_short_bodies_are_left_to_fastavro(body: bytes) -> None:
    # ConsentPolicy opens with a string (subject_id); a string's length first
    header = COMPILED.current("ConsentPolicy").single_object_header
    with pytest.raises((Unsure, IndexError)):
        _reader_of("ConsentPolicy")(header + body, codec.HEADER_SIZE)
    _same(header + body)


def test_a_union_index_out_of_range_is_left_to_fastavro() -> None:
    data = bytearray(codec.encode_event(event("Scroll", received_ts=None)))
    good = bytes(data)
    # received_ts is the first union of the event: its index byte follows ts
    at = good.index(_varint(event("Scroll")["ts"])) + len(_varint(event("Scroll")["ts"]))
    for index_byte in (4, 1, 3, 0x7E):
        data[at] = index_byte
        with pytest.raises(Unsure):
            _reader_of("CaptureEvent")(bytes(data), codec.HEADER_SIZE)
        _same(bytes(data))


def test_trailing_bytes_are_left_to_fastavro() -> None:
    data = codec.encode_event(event("Scroll")) + b"\x00"
    with pytest.raises(Unsure):
        _reader_of("CaptureEvent")(data, codec.HEADER_SIZE)
    _same(data)


def test_a_count_past_the_data_is_left_to_fastavro() -> None:
    # items of no bytes (nulls): a damaged count would keep the loop going for ever
    reader = compile_reader(
        {
            "type": "record",
            "name": "t.R",
            "fields": [{"name": "a", "type": {"type": "array", "items": "null"}}],
        }
    )
    assert reader(_varint(3) + _varint(0), 0) == {"a": [None, None, None]}
    with pytest.raises(Unsure):
        reader(_varint(2**40) + _varint(0), 0)


def test_long_arrays_read_as_with_fastavro() -> None:
    # more than 63 items: a block count of two varint bytes
    path = [{"dt_ms": i, "x": -i, "y": i * 1000} for i in range(150)]
    events = [
        event("MouseMove", seq=i, payload={"type": "MouseMove", "path": path}) for i in range(70)
    ]
    header = {
        "batch_id": "b",
        "org_id": "org-1",
        "subject_id": "subj-123",
        "device_id": "dev-9",
        "client_version": None,
        "sent_ts": 1,
        "first_seq": 0,
        "last_seq": 69,
    }
    data = codec.encode("DeviceBatch", {**header, "events": events})
    assert COMPILED.decode(data)[1]["events"][69]["payload"]["path"] == path
    _same(data)


def test_a_boolean_byte_other_than_one_reads_true_as_with_fastavro() -> None:
    sample = event("MouseClick", redactions=[], consent_version=None, client_version=None)
    data = bytearray(codec.encode_event(sample))
    # MouseClick ends with its boolean "double" (True here), before redactions'
    # empty array (0), consent_version and client_version (null: 0 each)
    assert data[-4:] == b"\x01\x00\x00\x00"
    for byte in (2, 0x80, 0xFF):
        data[-4] = byte
        assert COMPILED.decode(bytes(data))[1]["payload"]["double"] is True
        _same(bytes(data))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.0, 5e-324])
def test_doubles_at_the_edges_read_as_with_fastavro(value: float) -> None:
    schema = COMPILED.current("Session").expanded
    names = [f["name"] for f in schema["fields"]]
    datum: dict[str, Any] = dict.fromkeys(names, 0)
    datum.update(
        session_id="s",
        org_id="o",
        subject_id="u",
        device_id="d",
        end_reason="gap",
        active_seconds=value,
        event_counts={},
        app_seconds={"code": value},
        mouse_distance_px=value,
    )
    data = COMPILED.encode("Session", datum, check_domains=False)
    read = COMPILED.decode(data)[1]
    assert read["active_seconds"].hex() == value.hex()
    _same(data)


_LONG_ONLY = {
    "type": "record",
    "name": "t.Longs",
    "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "long"}],
}


@pytest.mark.parametrize("bits", range(0, 64))
def test_numbers_of_every_length_read_as_the_loop_reads_them(bits: int) -> None:
    # an 8-byte varint (a timestamp) is read as one 64-bit word, the others by the
    # loop: the two ways meet at each length, and on the sign
    reader = compile_reader(_LONG_ONLY)
    for value in (2**bits - 1, 2**bits, -(2**bits), -(2**bits) - 1, 2**bits + 0x5A5A5A5A5A):
        if not -(2**62) < value < 2**62:  # past 9 bytes (either sign): left to fastavro
            continue
        assert reader(_varint(value) + _varint(-value), 0) == {"a": value, "b": -value}


def test_an_eight_byte_number_cut_at_the_end_is_left_to_fastavro() -> None:
    reader = compile_reader(_LONG_ONLY)
    ts = 1_764_000_000_123_456  # an event time in microseconds: 8 varint bytes
    body = _varint(1) + _varint(ts)
    assert len(_varint(ts)) == 8
    assert reader(body, 0) == {"a": 1, "b": ts}
    for cut in range(1, 8):
        with pytest.raises((Unsure, IndexError)):
            reader(body[:-cut], 0)
    data = codec.encode_event(event("Scroll", ts=ts))
    for cut in range(len(data) - 40, len(data)):
        _same(data[:cut])


def _union_of_records_at(levels: int) -> dict[str, Any]:
    """A record whose union of two records sits under ``levels`` nested arrays."""
    inner: Any = {
        "type": "record",
        "name": "t.Inner",
        "fields": [
            {
                "name": "u",
                "type": [
                    {"type": "record", "name": "t.A", "fields": [{"name": "x", "type": "long"}]},
                    {"type": "record", "name": "t.B", "fields": [{"name": "y", "type": "string"}]},
                ],
            }
        ],
    }
    for _ in range(levels):
        inner = {"type": "array", "items": inner}
    return {"type": "record", "name": "t.Outer", "fields": [{"name": "a", "type": inner}]}


@pytest.mark.parametrize("levels", [0, 1, 4])
def test_a_union_of_records_reads_inline_and_deep_down_by_functions(levels: int) -> None:
    # shallow, the branches are read inline; deeper than a function may nest its
    # blocks, by a function per branch: the same datum either way
    schema = _union_of_records_at(levels)
    items: Any = [{"u": {"x": -5}}, {"u": {"y": "é"}}]
    expected: Any = [{"u": {"x": -5, "type": "A"}}, {"u": {"y": "é", "type": "B"}}]
    if not levels:  # the record itself
        items, expected = items[1], expected[1]
    for _ in range(levels - 1):
        items, expected = [items], [expected]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), {"a": items})
    reader = compile_reader(schema)
    assert reader(body.getvalue(), 0) == {"a": expected}
    assert ("_branches" in reader.source) == (levels > 2)
    # a union index past the branches (the first of the body when levels is 0;
    # else the first item's, after the block counts)
    damaged = bytearray(body.getvalue())
    damaged[levels] = 4
    with pytest.raises(Unsure):
        reader(bytes(damaged), 0)
