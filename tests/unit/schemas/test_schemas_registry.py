"""Loading the versioned .avsc tree and looking versions up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.errors import SchemaDefinitionError, UnknownSchema
from schemas.registry import PACKAGE_ROOT, Registry, default_registry

EXPECTED_RECORDS = {
    "candor.capture.v1": [
        "CaptureEvent",
        "AppContext",
        "KeyInput",
        "MouseMove",
        "PathPoint",
        "MouseClick",
        "Scroll",
        "WindowFocus",
        "ScreenFrame",
        "IdeEdit",
        "TerminalCommand",
        "ActivityState",
        "ConsentPolicy",
        "DeviceBatch",
        "CleanBatch",
    ],
    "candor.activity.v1": ["Session", "MinuteAggregate", "Action", "LateEvent"],
}


def test_every_contract_record_is_loaded() -> None:
    names = set(default_registry().names())
    expected = {f"{ns}.{r}" for ns, records in EXPECTED_RECORDS.items() for r in records}
    assert names == expected


def test_capture_event_v2_is_current_and_v1_stays_loadable() -> None:
    registry = default_registry()
    assert registry.latest("CaptureEvent").version == 2
    assert [v.version for v in registry.versions("CaptureEvent")] == [1, 2]
    v1 = registry.get("candor.capture.v1.CaptureEvent", 1)
    assert registry.by_fingerprint(v1.fingerprint) is v1


@pytest.mark.parametrize(
    ("lookup", "args"),
    [
        ("get", ("CaptureEvent", 9)),
        ("get", ("Nope", 1)),
        ("latest", ("Nope",)),
        ("by_fingerprint", (1,)),
    ],
)
def test_unknown_lookups_raise_unknown_schema(lookup: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(UnknownSchema):
        getattr(default_registry(), lookup)(*args)


def _fields(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for fld in node.get("fields", ()):
            found.append(fld)
            found.extend(_fields(fld["type"]))
        for key in ("items", "values"):
            found.extend(_fields(node.get(key)))
    elif isinstance(node, list):
        for branch in node:
            found.extend(_fields(branch))
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE_ROOT.glob("*/*.avsc")), ids=lambda p: p.name)
def test_every_record_and_field_has_a_doc(path: Path) -> None:
    definition = json.loads(path.read_text())
    assert definition.get("doc")
    for fld in _fields(definition):
        assert fld.get("doc"), f"{path.name}: field {fld['name']} has no doc"


def _as_dict(schema: object) -> dict[str, Any]:
    assert isinstance(schema, dict)
    return schema


def test_timestamps_are_ints_in_python_but_logical_in_the_schema() -> None:
    sv = default_registry().latest("CaptureEvent")
    ts = next(f for f in sv.expanded["fields"] if f["name"] == "ts")
    assert ts["type"] == {"type": "long", "logicalType": "timestamp-micros"}
    assert "timestamp-micros" not in json.dumps(
        {k: v for k, v in _as_dict(sv.parsed).items() if not k.startswith("__")}
    )


def _write(root: Path, ns: str, file: str, record: dict[str, Any]) -> None:
    (root / ns).mkdir(parents=True, exist_ok=True)
    (root / ns / file).write_text(json.dumps(record))


def _record(name: str, fields: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": fields, **extra}


def test_pinned_references_keep_old_versions_stable(tmp_path: Path) -> None:
    _write(tmp_path, "t", "Inner.v1.avsc", _record("Inner", [{"name": "a", "type": "int"}]))
    _write(
        tmp_path,
        "t",
        "Inner.v2.avsc",
        _record(
            "Inner", [{"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0}]
        ),
    )
    _write(
        tmp_path,
        "t",
        "Outer.v1.avsc",
        _record("Outer", [{"name": "i", "type": "Inner"}], **{"x-candor-uses": {"t.Inner": 1}}),
    )
    registry = Registry.load(tmp_path)
    outer = registry.get("Outer", 1)
    assert outer.canonical_form == (
        '{"name":"t.Outer","type":"record","fields":[{"name":"i","type":'
        '{"name":"t.Inner","type":"record","fields":[{"name":"a","type":"int"}]}}]}'
    )


@pytest.mark.parametrize(
    ("file", "record"),
    [
        ("Outer.v1.avsc", _record("Outer", [{"name": "i", "type": "Missing"}])),
        (
            "Outer.v1.avsc",
            _record("Outer", [{"name": "i", "type": "Inner"}], **{"x-candor-uses": {"t.Inner": 5}}),
        ),
        ("Outer.avsc", _record("Outer", [{"name": "a", "type": "int"}])),
        ("Outer.v1.avsc", _record("Other", [{"name": "a", "type": "int"}])),
        (
            "Outer.v1.avsc",
            _record("Outer", [{"name": "a", "type": 42}]),
        ),
    ],
    ids=[
        "unpinned-reference",
        "missing-pinned-version",
        "bad-file-name",
        "name-mismatch",
        "bad-type",
    ],
)
def test_broken_trees_are_refused(tmp_path: Path, file: str, record: dict[str, Any]) -> None:
    _write(tmp_path, "t", "Inner.v1.avsc", _record("Inner", [{"name": "a", "type": "int"}]))
    _write(tmp_path, "t", file, record)
    with pytest.raises(SchemaDefinitionError):
        Registry.load(tmp_path)


def test_a_new_version_identical_to_the_old_one_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "t", "Inner.v1.avsc", _record("Inner", [{"name": "a", "type": "int"}]))
    _write(
        tmp_path, "t", "Inner.v2.avsc", _record("Inner", [{"name": "a", "type": "int", "doc": "x"}])
    )
    with pytest.raises(SchemaDefinitionError, match="same canonical form"):
        Registry.load(tmp_path)
