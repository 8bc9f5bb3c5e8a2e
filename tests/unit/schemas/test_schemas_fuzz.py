"""Decode never raises anything but SchemaError subclasses, whatever the bytes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import codec
from schemas.errors import SchemaError
from tests.unit.schemas.schemas_samples import PAYLOADS, consent, event

VALID = [codec.encode_event(event(p)) for p in sorted(PAYLOADS)] + [codec.encode_consent(consent())]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_or_typed_error(data: bytes) -> None:
    try:
        codec.decode(data)
    except SchemaError as err:
        assert err.reason in {"undecodable", "unknown_schema", "invalid_field"}


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _decode_or_typed_error(data)


@FUZZ
@given(st.sampled_from(VALID), st.binary(max_size=300))
def test_valid_header_random_body(message: bytes, body: bytes) -> None:
    _decode_or_typed_error(message[:10] + body)


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_truncations(message: bytes, data: st.DataObject) -> None:
    _decode_or_typed_error(message[: data.draw(st.integers(0, len(message)))])


@FUZZ
@given(st.sampled_from(VALID), st.data())
def test_flipped_bytes(message: bytes, data: st.DataObject) -> None:
    mutated = bytearray(message)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(10, len(mutated) - 1))
        mutated[index] ^= data.draw(st.integers(1, 255))
    _decode_or_typed_error(bytes(mutated))
