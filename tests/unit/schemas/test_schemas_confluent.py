"""Confluent wire format framing over the same codec."""

from __future__ import annotations

import pytest

from schemas.codec import default_codec
from schemas.confluent import ConfluentCodec
from schemas.errors import SchemaError, Undecodable, UnknownSchema
from tests.unit.schemas.schemas_samples import event

IDS = {7: ("CaptureEvent", 1), 8: ("CaptureEvent", 2)}


def test_round_trip_uses_the_id_of_the_current_version() -> None:
    confluent = ConfluentCodec(default_codec(), IDS)
    data = confluent.encode("CaptureEvent", event())
    assert data[:5] == b"\x00\x00\x00\x00\x08"
    assert confluent.decode(data) == ("CaptureEvent", event())


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", Undecodable),
        (b"\x01\x00\x00\x00\x08", Undecodable),
        (b"\x00\x00\x00\x00\x09", UnknownSchema),
    ],
)
def test_bad_frames_raise_typed_errors(data: bytes, error: type[SchemaError]) -> None:
    with pytest.raises(error):
        ConfluentCodec(default_codec(), IDS).decode(data)


def test_encoding_without_an_id_for_the_current_version_is_refused() -> None:
    with pytest.raises(UnknownSchema):
        ConfluentCodec(default_codec(), {7: ("CaptureEvent", 1)}).encode("CaptureEvent", event())
