"""CRC-64-AVRO, the Rabin fingerprint the Avro specification defines for schemas.

The fingerprint of a schema is this function applied to the UTF-8 bytes of its
Parsing Canonical Form (see `schemas.canonical`). Single-object encoding puts
it in every message, little-endian, so a reader finds the writer schema without
a registry service.
"""

from __future__ import annotations

#: The polynomial's "empty" value; also the fingerprint of zero bytes.
EMPTY: int = 0xC15D213AA4D7A795


def _build_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        fp = byte
        for _ in range(8):
            # Shift right; fold the polynomial in when the low bit falls off.
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE: tuple[int, ...] = _build_table()


def crc64_avro(data: bytes) -> int:
    """Return the CRC-64-AVRO fingerprint of ``data`` as an unsigned 64-bit int.

    Pure, never raises for bytes input. To compare with implementations that
    print a signed Java ``long``, use `as_signed`.
    """
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def as_signed(fingerprint: int) -> int:
    """Return the unsigned 64-bit ``fingerprint`` as the signed value Java prints."""
    return fingerprint - (1 << 64) if fingerprint >= 1 << 63 else fingerprint


def to_wire(fingerprint: int) -> bytes:
    """Return the 8 little-endian bytes single-object encoding carries."""
    return fingerprint.to_bytes(8, "little")
