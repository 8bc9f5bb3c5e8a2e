"""The compiled writer writes exactly fastavro's bytes, and names the field it refuses.

The writer is generated code shaped for speed (records defined inline are
written inline, varints from a table): these tests hold it to the reference
on random data of every record, boundary integers included.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Mapping
from typing import Any

import fastavro
import pytest

from schemas.errors import InvalidField
from schemas.registry import SchemaVersion, default_registry
from schemas.writer import compile_writer, encode_long

CURRENT = [default_registry().latest(name) for name in default_registry().names()]
DATUMS_PER_RECORD = 300

# Around every varint length and the 14-bit steps of the writer's table.
EDGE_LONGS = sorted(
    {s * ((1 << k) + d) for k in range(63) for d in (-1, 0, 1) for s in (1, -1)}
    | {(1 << 63) - 1, -(1 << 63), 1_796_024_370_637_945, -1_796_024_370_637_945}
)
EDGE_INTS = [v for v in EDGE_LONGS if -(1 << 31) <= v < (1 << 31)]
TEXT = "abcxyz_-./: 0189éü✓中文😀"


class _Sampler:
    """Random valid datums of a schema, in Candor's form (tagged unions as dicts)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.named: dict[str, Any] = {}

    def datum(self, schema: Any, depth: int = 0) -> Any:
        rng = self.rng
        if isinstance(schema, list):
            branch = rng.choice(schema)
            value = self.datum(branch, depth)
            if all(isinstance(b, Mapping) and b.get("type") == "record" for b in schema):
                value["type"] = branch["name"].rpartition(".")[2]  # a tagged union
            return value
        if isinstance(schema, str):
            if schema in self.named:
                return self.datum(self.named[schema], depth)
            return self._primitive(schema)
        kind = schema["type"]
        if kind in ("record", "error"):
            self.named[schema["name"]] = schema
            out = {}
            for fld in schema["fields"]:
                if "default" in fld and rng.random() < 0.2:
                    continue  # the writer fills the default
                out[fld["name"]] = self.datum(fld["type"], depth + 1)
            return out
        if kind == "enum":
            self.named[schema["name"]] = schema
            return rng.choice(schema["symbols"])
        if kind == "array":
            size = rng.choice((0, 1, 3, 70)) if depth < 3 else 0
            return [self.datum(schema["items"], depth + 1) for _ in range(size)]
        if kind == "map":
            size = rng.choice((0, 1, 3)) if depth < 3 else 0
            return {self._string(): self.datum(schema["values"], depth + 1) for _ in range(size)}
        return self.datum(kind, depth)

    def _primitive(self, kind: str) -> Any:
        rng = self.rng
        if kind == "null":
            return None
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "int":
            return (
                rng.choice(EDGE_INTS) if rng.random() < 0.5 else rng.randrange(-(1 << 31), 1 << 31)
            )
        if kind == "long":
            return (
                rng.choice(EDGE_LONGS) if rng.random() < 0.5 else rng.randrange(-(1 << 63), 1 << 63)
            )
        if kind == "float":
            return struct.unpack("<f", struct.pack("<f", rng.uniform(-1e6, 1e6)))[0]
        if kind == "double":
            return rng.uniform(-1e300, 1e300)
        if kind == "bytes":
            return rng.randbytes(rng.choice((0, 5, 63, 64, 200)))
        return self._string()

    def _string(self) -> str:
        size = self.rng.choice((0, 1, 10, 36, 63, 64, 65, 200))
        return "".join(self.rng.choice(TEXT) for _ in range(size))


def _fastavro_form(schema: Any, value: Any, named: dict[str, Any]) -> Any:
    """``value`` as fastavro writes it: union branches named, defaults filled in."""
    if isinstance(schema, list):
        if value is None:
            return None
        branches = [named.get(b, b) if isinstance(b, str) else b for b in schema]
        records = [b for b in branches if isinstance(b, Mapping) and b.get("type") == "record"]
        if len(records) == len(branches):
            short = value["type"]
            branch = next(b for b in records if b["name"].rpartition(".")[2] == short)
            body = {k: v for k, v in value.items() if k != "type"}
            return (branch["name"], _fastavro_form(branch, body, named))
        other = next(b for b in schema if b != "null")
        return _fastavro_form(other, value, named)
    if isinstance(schema, str):
        if schema in named:
            return _fastavro_form(named[schema], value, named)
        return value
    kind = schema["type"]
    if kind in ("record", "error"):
        named[schema["name"]] = schema
        return {
            f["name"]: _fastavro_form(f["type"], value.get(f["name"], f.get("default")), named)
            for f in schema["fields"]
        }
    if kind == "enum":
        named[schema["name"]] = schema
        return value
    if kind == "array":
        return [_fastavro_form(schema["items"], v, named) for v in value]
    if kind == "map":
        return {k: _fastavro_form(schema["values"], v, named) for k, v in value.items()}
    return _fastavro_form(kind, value, named)


@pytest.mark.parametrize("sv", CURRENT, ids=lambda sv: sv.name)
def test_compiled_writer_writes_fastavros_bytes(sv: SchemaVersion) -> None:
    write = compile_writer(sv.expanded)
    rng = random.Random(f"writer-{sv.name}")
    for _ in range(DATUMS_PER_RECORD):
        datum = _Sampler(rng).datum(sv.expanded)
        ours = bytearray()
        write(ours, datum)
        reference = io.BytesIO()
        fastavro.schemaless_writer(reference, sv.parsed, _fastavro_form(sv.parsed, datum, {}))
        assert bytes(ours) == reference.getvalue(), datum


def test_encode_long_writes_zigzag_varints() -> None:
    for value in EDGE_LONGS:
        ours = bytearray()
        encode_long(ours, value)
        reference = io.BytesIO()
        fastavro.schemaless_writer(reference, "long", value)
        assert bytes(ours) == reference.getvalue(), value


def _paths(schema: Any, prefix: str, named: dict[str, Any]) -> list[tuple[str, tuple[Any, ...]]]:
    """(error path, key path) of every scalar field reachable through records and arrays."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    found: list[tuple[str, tuple[Any, ...]]] = []
    if isinstance(schema, Mapping) and schema.get("type") == "record":
        named[schema["name"]] = schema
        for fld in schema["fields"]:
            path = f"{prefix}.{fld['name']}" if prefix else fld["name"]
            inner = _paths(fld["type"], path, named)
            found.append((path, (fld["name"],)))
            found.extend((p, (fld["name"], *keys)) for p, keys in inner)
    elif isinstance(schema, Mapping) and schema.get("type") == "array":
        for p, keys in _paths(schema["items"], prefix + "[]", named):
            found.append((p, (0, *keys)))
    return found


def _holder(datum: Any, keys: tuple[Any, ...]) -> dict[str, Any] | None:
    """The dict holding the field at ``keys`` (array items: the first), if ``datum`` has it."""
    holder = datum
    for key in keys[:-1]:
        if isinstance(key, int):
            if not isinstance(holder, list) or not holder:
                return None
        elif not isinstance(holder, dict) or holder.get(key) is None:
            return None
        holder = holder[key]
    return holder if isinstance(holder, dict) and keys[-1] in holder else None


@pytest.mark.parametrize("sv", CURRENT, ids=lambda sv: sv.name)
def test_a_wrong_value_anywhere_names_its_field(sv: SchemaVersion) -> None:
    write = compile_writer(sv.expanded)
    rng = random.Random(f"wrong-{sv.name}")
    tried = 0
    for path, keys in _paths(sv.expanded, "", {}):
        for _ in range(50):
            datum = _Sampler(rng).datum(sv.expanded)
            holder = _holder(datum, keys)
            if holder is not None:
                break
        else:
            continue
        holder[keys[-1]] = object()  # no Avro type takes it
        with pytest.raises(InvalidField) as refused:
            write(bytearray(), datum)
        assert refused.value.field == path
        tried += 1
    assert tried


def test_a_missing_nested_field_and_a_bad_tag_are_named() -> None:
    sv = default_registry().latest("CleanBatch")
    write = compile_writer(sv.expanded)
    datum = _Sampler(random.Random(1)).datum(sv.expanded)
    event = default_registry().latest("CaptureEvent").expanded
    datum["events"] = [_Sampler(random.Random(2)).datum(event)]
    del datum["events"][0]["app"]["app_name"]
    with pytest.raises(InvalidField) as missing:
        write(bytearray(), datum)
    assert (missing.value.field, missing.value.problem) == (
        "events[].app.app_name",
        "missing required field",
    )
    datum["events"][0]["app"]["app_name"] = "code"
    datum["events"][0]["payload"] = {"type": "Nope"}
    with pytest.raises(InvalidField) as tag:
        write(bytearray(), datum)
    assert tag.value.field == "events[].payload.type"
    datum["events"][0]["payload"] = ["not", "a", "mapping"]
    with pytest.raises(InvalidField) as mapping:
        write(bytearray(), datum)
    assert mapping.value.field == "events[].payload"


def _nested(level: int) -> dict[str, Any]:
    if level == 0:
        return {"type": "record", "name": "Leaf", "fields": [{"name": "x", "type": "long"}]}
    inner = {"type": "record", "name": f"Opt{level}", "fields": [{"name": "y", "type": "int"}]}
    return {
        "type": "record",
        "name": f"Level{level}",
        "fields": [
            {"name": "items", "type": {"type": "array", "items": _nested(level - 1)}},
            {"name": "opt", "type": ["null", inner]},
        ],
    }


def test_deeply_nested_records_compile_and_write_fastavros_bytes() -> None:
    schema = _nested(30)  # deeper than one generated function may nest blocks
    datum: dict[str, Any] = {"x": -(1 << 40)}
    for level in range(1, 31):
        datum = {"items": [datum], "opt": {"y": level} if level % 2 else None}
    ours = bytearray()
    compile_writer(schema)(ours, datum)
    reference = io.BytesIO()
    fastavro.schemaless_writer(reference, fastavro.parse_schema(schema), datum)
    assert bytes(ours) == reference.getvalue()


def test_a_wrong_value_in_a_union_branch_names_its_field() -> None:
    sv = default_registry().latest("CleanBatch")
    write = compile_writer(sv.expanded)
    event = _Sampler(random.Random(3)).datum(default_registry().latest("CaptureEvent").expanded)
    event["payload"] = {"type": "KeyInput", "is_secure_field": False, "count": "3"}
    datum = _Sampler(random.Random(4)).datum(sv.expanded)
    datum["events"] = [event]
    with pytest.raises(InvalidField) as refused:
        write(bytearray(), datum)
    assert refused.value.field == "events[].payload.count"
    assert refused.value.problem == "expected an int in int range, got str '3'"
    event["payload"] = {"type": 7}
    with pytest.raises(InvalidField) as tag:
        write(bytearray(), datum)
    assert tag.value.field == "events[].payload.type"
    assert tag.value.problem.endswith("got int 7")
