"""Every released version stays readable by the current one; breaking changes are caught."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest

from schemas import codec
from schemas.compat import check_compatibility, check_registry
from schemas.registry import SchemaVersion, default_registry

ALL_VERSIONS = list(default_registry())


def test_current_versions_read_every_released_version() -> None:
    assert check_registry(default_registry()) == {}


def _sample(schema: Any, named: dict[str, Any]) -> Any:
    """A valid datum for ``schema`` in fastavro's form (tuples for record unions)."""
    if isinstance(schema, list):
        branch = schema[-1]
        value = _sample(branch, named)
        return (
            (branch["name"], value)
            if isinstance(branch, dict) and branch.get("type") == "record"
            else value
        )
    if isinstance(schema, str):
        if schema in named:
            return _sample(named[schema], named)
        return {
            "null": None,
            "boolean": True,
            "int": 1,
            "long": 1,
            "float": 1.0,
            "double": 1.0,
            "bytes": b"x",
            "string": "x",
        }[schema]
    kind = schema["type"]
    if kind == "record":
        named[schema["name"]] = schema
        return {f["name"]: _sample(f["type"], named) for f in schema["fields"]}
    if kind == "enum":
        named[schema["name"]] = schema
        return schema["symbols"][0]
    if kind == "array":
        return [_sample(schema["items"], named)]
    if kind == "map":
        return {"k": _sample(schema["values"], named)}
    return _sample(kind, named)


@pytest.mark.parametrize("sv", ALL_VERSIONS, ids=lambda sv: f"{sv.name}.v{sv.version}")
def test_bytes_of_each_released_version_decode_with_the_current_reader(sv: SchemaVersion) -> None:
    body = io.BytesIO()
    datum = _sample(sv.parsed, {})
    if sv.name in ("Session", "Action"):
        datum["end_ts"] = datum["start_ts"]
    if sv.name == "MinuteAggregate":
        datum["window_start"] = 0
    if sv.name == "ConsentPolicy":
        datum["scopes"] = ["analytics"]
    fastavro.schemaless_writer(body, sv.parsed, datum)
    name, decoded = codec.decode(sv.single_object_header + body.getvalue())
    current = default_registry().latest(sv.name)
    assert name == sv.name
    assert set(decoded) == {f["name"] for f in current.expanded["fields"]}


def _v2_with(change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(dict(default_registry().get("CaptureEvent", 2).expanded))
    change(schema)
    return schema


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in schema["fields"] if f["name"] == name)


BREAKING = {
    "new field without default": lambda s: s["fields"].append({"name": "x", "type": "string"}),
    "long narrowed to int": lambda s: _field(s, "seq").update(type="int"),
    "renamed field": lambda s: _field(s, "device_id").update(name="device"),
    "payload branch removed": lambda s: _field(s, "payload").update(
        type=_field(s, "payload")["type"][:-1]
    ),
    "enum symbol removed": lambda s: _field(s, "payload")["type"][1]["fields"][2]["type"][
        "items"
    ].update(symbols=["ctrl", "alt", "shift"]),
}


@pytest.mark.parametrize("change", BREAKING.values(), ids=list(BREAKING))
def test_breaking_changes_are_reported(change: Any) -> None:
    writer = default_registry().get("CaptureEvent", 1).expanded
    assert check_compatibility(_v2_with(change), writer) != []


SAFE = {
    "optional field added": lambda s: s["fields"].append(
        {"name": "x", "type": ["null", "int"], "default": None}
    ),
    "int widened to long": lambda s: _field(s, "payload")["type"][4]["fields"][0].update(
        type="long"
    ),
    "field renamed with alias": lambda s: _field(s, "device_id").update(
        name="device", aliases=["device_id"]
    ),
}


@pytest.mark.parametrize("change", SAFE.values(), ids=list(SAFE))
def test_compatible_changes_pass(change: Any) -> None:
    writer = default_registry().get("CaptureEvent", 2).expanded
    assert check_compatibility(_v2_with(change), writer) == []
