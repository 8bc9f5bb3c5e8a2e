"""The on-disk frame of one spooled Kafka record.

A frame is a 4-byte big-endian body length, the CRC32 of the body, then the
body: key (i32 length, -1 for None, bytes), value (i32 length, bytes), header
count (u16), and per header its name (u16 length, UTF-8) and value (i32
length, -1 for None, bytes). The length + CRC prefix is what lets the spool
tell a whole frame from one torn by a crash.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from producers.sdk.errors import SpoolCorrupt, SpoolError

Header = tuple[str, bytes | None]

MAX_RECORD_BYTES = 64 * 1024 * 1024

_FRAME = struct.Struct(">II")  # body length, crc32(body)
_LEN = struct.Struct(">i")  # -1 encodes None
_COUNT = struct.Struct(">H")


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    """One Kafka record as the spool keeps it."""

    value: bytes
    key: bytes | None = None
    headers: tuple[Header, ...] = ()


def encode_frame(record: SpoolRecord) -> bytes:
    """The on-disk frame of `record` (length, CRC32, body)."""
    parts = [_encode_optional(record.key), _LEN.pack(len(record.value)), record.value]
    parts.append(_COUNT.pack(len(record.headers)))
    for name, value in record.headers:
        raw_name = name.encode()
        parts += [_COUNT.pack(len(raw_name)), raw_name, _encode_optional(value)]
    body = b"".join(parts)
    if len(body) > MAX_RECORD_BYTES:
        raise SpoolError(f"record of {len(body)} bytes exceeds {MAX_RECORD_BYTES}")
    return _FRAME.pack(len(body), zlib.crc32(body)) + body


def decode_body(body: bytes) -> SpoolRecord:
    """Parse a frame body written by `encode_frame`; raises `SpoolCorrupt`."""
    try:
        key, at = _decode_optional(body, 0)
        (value_len,) = _LEN.unpack_from(body, at)
        at += _LEN.size
        value = body[at : at + value_len]
        at += value_len
        (count,) = _COUNT.unpack_from(body, at)
        at += _COUNT.size
        headers: list[Header] = []
        for _ in range(count):
            (name_len,) = _COUNT.unpack_from(body, at)
            at += _COUNT.size
            name = body[at : at + name_len].decode()
            at += name_len
            header_value, at = _decode_optional(body, at)
            headers.append((name, header_value))
    except (struct.error, UnicodeDecodeError) as err:
        raise SpoolCorrupt(f"undecodable spool record: {err}") from err
    if at != len(body) or value_len < 0 or len(value) != value_len:
        raise SpoolCorrupt("spool record body has a wrong length")
    return SpoolRecord(value=value, key=key, headers=tuple(headers))


def _encode_optional(data: bytes | None) -> bytes:
    return _LEN.pack(-1) if data is None else _LEN.pack(len(data)) + data


def _decode_optional(body: bytes, at: int) -> tuple[bytes | None, int]:
    (length,) = _LEN.unpack_from(body, at)
    at += _LEN.size
    if length == -1:
        return None, at
    if length < 0 or at + length > len(body):
        raise SpoolCorrupt("spool record field overruns its body")
    return body[at : at + length], at + length


def read_frame(handle: FrameReader, offset: int, limit: int) -> tuple[bytes, int] | None:
    """The body of the frame at `offset` and the offset after it, or None when
    no whole valid frame lies between `offset` and `limit`."""
    if offset + _FRAME.size > limit:
        return None
    handle.seek(offset)
    length, crc = _FRAME.unpack(handle.read(_FRAME.size))
    end = offset + _FRAME.size + length
    if length > MAX_RECORD_BYTES or end > limit:
        return None
    body = handle.read(length)
    if len(body) != length or zlib.crc32(body) != crc:
        return None
    return body, end


class FrameReader:
    """A binary file opened for reading (a protocol would do; this keeps mypy simple)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")

    def seek(self, offset: int) -> None:
        self._file.seek(offset)

    def read(self, size: int) -> bytes:
        return self._file.read(size)

    def close(self) -> None:
        self._file.close()
