"""Bytes cross the language boundary: the reference `avro` package reads ours and we read its."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import avro.io
import avro.schema
import pytest

from schemas import codec
from schemas.registry import _strip_logical_types, default_registry
from tests.unit.schemas.schemas_samples import ACTION, MINUTE, PAYLOADS, SESSION, consent, event

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _micros(value: Any) -> Any:
    """Turn the avro package's logical-type values back into Candor's int form."""
    if isinstance(value, dt.datetime):
        return (value - EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(value, dict):
        return {k: _micros(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_micros(v) for v in value]
    return value


def _untagged(datum: dict[str, Any]) -> dict[str, Any]:
    if "payload" in datum:
        return {**datum, "payload": {k: v for k, v in datum["payload"].items() if k != "type"}}
    return datum


CASES = [(f"CaptureEvent-{p}", "CaptureEvent", event(p)) for p in sorted(PAYLOADS)] + [
    ("ConsentPolicy", "ConsentPolicy", consent()),
    ("Session", "Session", SESSION),
    ("MinuteAggregate", "MinuteAggregate", MINUTE),
    ("Action", "Action", ACTION),
]


@pytest.mark.parametrize(("name", "datum"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_avro_package_reads_what_we_write(name: str, datum: dict[str, Any]) -> None:
    sv = default_registry().latest(name)
    data = codec.encode(name, datum)
    # The published schema, logical types included, as another consumer would use it.
    schema = avro.schema.parse(json.dumps(sv.expanded))
    decoded = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert _micros(decoded) == _untagged(datum)


@pytest.mark.parametrize(("name", "datum"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_we_read_what_the_avro_package_writes(name: str, datum: dict[str, Any]) -> None:
    sv = default_registry().latest(name)
    schema = avro.schema.parse(json.dumps(_strip_logical_types(sv.expanded)))
    body = io.BytesIO()
    avro.io.DatumWriter(schema).write(_untagged(datum), avro.io.BinaryEncoder(body))
    assert codec.decode(sv.single_object_header + body.getvalue()) == (name, datum)
