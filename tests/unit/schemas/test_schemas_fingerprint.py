"""CRC-64-AVRO and Parsing Canonical Form agree with the spec and with other implementations."""

from __future__ import annotations

import json

import avro.schema
import fastavro.schema
import pytest

from schemas.canonical import parsing_canonical_form
from schemas.fingerprint import EMPTY, as_signed, crc64_avro, to_wire
from schemas.registry import SchemaVersion, _strip_logical_types, default_registry

# Fingerprints of the primitive schemas as the Java implementation prints them (signed long).
SPEC_VECTORS = [
    ('"null"', 7195948357588979594),
    ('"boolean"', -6970731678124411036),
    ('"int"', 8247732601305521295),
    ('"long"', -3434872931120570953),
    ('"float"', 5583340709985441680),
    ('"double"', -8181574048448539266),
    ('"bytes"', 5746618253357095269),
    ('"string"', -8142146995180207161),
]

VERSIONS = list(default_registry())


def _id(sv: SchemaVersion) -> str:
    return f"{sv.name}.v{sv.version}"


@pytest.mark.parametrize(("canonical", "expected"), SPEC_VECTORS)
def test_primitive_fingerprints_match_spec_vectors(canonical: str, expected: int) -> None:
    assert as_signed(crc64_avro(canonical.encode())) == expected


def test_fingerprint_of_nothing_is_the_empty_value() -> None:
    assert crc64_avro(b"") == EMPTY


@pytest.mark.parametrize("sv", VERSIONS, ids=_id)
def test_fingerprint_matches_fastavro(sv: SchemaVersion) -> None:
    theirs = fastavro.schema.to_parsing_canonical_form(dict(sv.expanded))
    assert sv.canonical_form == theirs
    assert to_wire(sv.fingerprint).hex() == fastavro.schema.fingerprint(theirs, "CRC-64-AVRO")


@pytest.mark.parametrize("sv", VERSIONS, ids=_id)
def test_fingerprint_matches_the_avro_package(sv: SchemaVersion) -> None:
    # The avro package keeps {"type": "long"} for logical types, against the spec's
    # [PRIMITIVES] rule, so compare on the schema without logical types: same PCF.
    theirs = avro.schema.parse(json.dumps(_strip_logical_types(sv.expanded)))
    assert theirs.canonical_form == sv.canonical_form
    assert theirs.fingerprint() == to_wire(sv.fingerprint)


def test_docs_defaults_and_logical_types_do_not_change_the_canonical_form() -> None:
    plain = {
        "type": "record",
        "name": "R",
        "namespace": "n",
        "fields": [{"name": "t", "type": "long"}],
    }
    decorated = {
        "type": "record",
        "name": "n.R",
        "doc": "x",
        "fields": [
            {
                "name": "t",
                "doc": "y",
                "default": 0,
                "type": {"type": "long", "logicalType": "timestamp-micros"},
            }
        ],
    }
    assert parsing_canonical_form(plain) == parsing_canonical_form(decorated)
    assert (
        parsing_canonical_form(plain)
        == '{"name":"n.R","type":"record","fields":[{"name":"t","type":"long"}]}'
    )


@pytest.mark.parametrize(
    "changed_field",
    [
        {"name": "u", "type": "long"},
        {"name": "t", "type": "int"},
        {"name": "t", "type": ["null", "long"]},
    ],
)
def test_any_change_to_names_or_types_changes_the_fingerprint(
    changed_field: dict[str, object],
) -> None:
    base = {"type": "record", "name": "n.R", "fields": [{"name": "t", "type": "long"}]}
    changed = {**base, "fields": [changed_field]}
    assert crc64_avro(parsing_canonical_form(base).encode()) != crc64_avro(
        parsing_canonical_form(changed).encode()
    )


def test_header_is_marker_plus_little_endian_fingerprint() -> None:
    sv = default_registry().latest("CaptureEvent")
    assert sv.single_object_header == b"\xc3\x01" + sv.fingerprint.to_bytes(8, "little")
