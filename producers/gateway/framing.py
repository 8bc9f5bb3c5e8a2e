"""The Avro batch framing of ``POST /v1/events`` (pure).

Media type ``application/vnd.candor.avro-batch``: the body is zero or more
frames, back to back, nothing before, between or after them::

    frame = length: 4 bytes, unsigned big-endian | message: `length` bytes
    message = one Avro single-object encoded CaptureEvent (schemas.codec)

A length of 0 or one that runs past the end of the body makes the whole body
unreadable (`BadRequest` "bad_framing"): once the framing is lost, no later
frame boundary can be trusted. A message that frames correctly but does not
decode is a per-event rejection, decided by the caller.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from producers.gateway.errors import BadRequest

AVRO_BATCH = "application/vnd.candor.avro-batch"
_LENGTH = struct.Struct(">I")


def frame_messages(messages: Iterable[bytes]) -> bytes:
    """The batch body carrying `messages` in order. Raises ValueError for an
    empty message (it could not be framed unambiguously)."""
    out = bytearray()
    for message in messages:
        if not message:
            raise ValueError("cannot frame an empty message")
        out += _LENGTH.pack(len(message))
        out += message
    return bytes(out)


def split_frames(body: bytes, max_frames: int) -> list[bytes]:
    """The messages of a batch body, in order.

    Raises `BadRequest` "bad_framing" for a zero length, a truncated length
    prefix or a frame running past the end, and "too_many_events" beyond
    `max_frames` frames (checked while reading, so a body of tiny frames
    cannot make the gateway build a huge list).
    """
    messages: list[bytes] = []
    offset, size = 0, len(body)
    view = memoryview(body)
    while offset < size:
        if size - offset < _LENGTH.size:
            raise BadRequest("bad_framing", f"truncated length prefix at byte {offset}")
        (length,) = _LENGTH.unpack_from(body, offset)
        offset += _LENGTH.size
        if length == 0:
            raise BadRequest("bad_framing", f"zero-length frame at byte {offset - _LENGTH.size}")
        if length > size - offset:
            raise BadRequest(
                "bad_framing", f"frame of {length} bytes at byte {offset} runs past the body"
            )
        if len(messages) >= max_frames:
            raise BadRequest("too_many_events", f"more than {max_frames} events in one batch")
        messages.append(bytes(view[offset : offset + length]))
        offset += length
    return messages
