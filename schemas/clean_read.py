"""A faster reader of capture.clean's `CleanBatch` records, for the sinks. Pure.

`read_clean_batch` returns the datum `schemas.codec.decode` returns for a
`CleanBatch` written with its current version (what the stream worker
writes), or None for any record it does not read: then the caller decodes
it with `schemas.codec.decode`, which returns that datum or raises the error.
So the sink's rows and dead letters are the codec's, only cheaper to reach.

Why: decoding is most of the sink's CPU on capture.clean, and the sink runs on
the cores the stream worker needs. fastavro reads byte by byte through a file
object and looks the schema over at every field; this code knows the one
layout and reads the bytes in place. Per capture event of `bench/sink.py`'s
batches, domain checks included: ~8.5 us of CPU through the codec, ~5 here.

How it stays the codec's datum:

- it reads only records whose header names the version it was written for
  (`WRITTEN_FOR`, the fingerprint of that version's canonical form: the byte
  layout), and only while that version is the current one (an older version
  is resolved into the current one by the codec, defaults filled);
- it builds the dicts fastavro builds, keys in the same order, the payload's
  ``"type"`` last (`schemas.codec._tag_by_first_field`);
- it holds each batch to the codec's domain check (`schemas.domain.
  check_clean_batch`), inline: calling that check costs ~0.7 us per event,
  in calls (tests/unit/schemas/test_schemas_clean_read.py pins the checks it
  mirrors: a change there fails it until this file follows);
- anything unusual (bad or truncated bytes, a string that is not UTF-8, a
  union or enum index out of range, a negative length or block count, a
  varint of 10 bytes, trailing bytes, a value out of its domain, an event
  naming another org, subject or device) makes it give up, not guess: the
  codec then says what it says;
- tests/unit/schemas/test_schemas_clean_read.py holds it to the codec on
  random batches and on every truncation and one-byte change of them.
"""

from __future__ import annotations

import functools
from typing import Any

from schemas.codec import HEADER_SIZE, default_codec
from schemas.registry import SINGLE_OBJECT_MARKER

CLEAN_BATCH = "CleanBatch"
#: The header of the `CleanBatch` version this module reads (v1, with
#: CaptureEvent v2): marker and the fingerprint of its canonical form.
WRITTEN_FOR = SINGLE_OBJECT_MARKER + bytes.fromhex("c3e8b55fa5d8a7d5")

_MODIFIERS = ("ctrl", "alt", "shift", "meta")
_BUTTONS = ("left", "right", "middle")
_STATES = ("active", "idle", "locked")


class _Unread(Exception):
    """Bytes this reader leaves to the codec."""


@functools.cache
def _current() -> bool:
    """Whether `WRITTEN_FOR` is the version the codec resolves CleanBatches into."""
    return default_codec().current(CLEAN_BATCH).single_object_header == WRITTEN_FOR


def read_clean_batch(data: bytes) -> dict[str, Any] | None:
    """The `CleanBatch` datum of ``data`` as `schemas.codec.decode` gives it, or
    None when ``data`` is not a CleanBatch of the current version or is not
    one this reader takes (the caller then decodes it with the codec). Never
    raises."""
    if type(data) is not bytes or data[:HEADER_SIZE] != WRITTEN_FOR or not _current():
        return None
    try:
        datum, end = _batch(data, HEADER_SIZE)
        if end != len(data):
            return None
    except Exception:  # whatever it is, the codec says it again, as it always does
        return None
    return datum


# Each reader below takes ``(data, pos)`` and returns ``(value, next pos)``,
# raising `_Unread` (or IndexError, UnicodeDecodeError: read past the end, not
# UTF-8) for what it does not read, a value out of its domain included: the
# checks of `schemas.domain.check_clean_batch` are marked "domain".


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """An int or long: a zig-zag varint of at most 9 bytes (63 bits).

    The lengths read most are taken apart without the loop: one to three bytes
    (counts, coordinates, seqs) one by one, and eight (a timestamp in
    microseconds, in every event) as one little-endian word whose 7-bit groups
    are joined in three steps (pairs, quads, all) instead of eight turns.
    """
    b = data[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    c = data[pos + 1]
    if c < 0x80:
        n = (b & 0x7F) | c << 7
        return (n >> 1) ^ -(n & 1), pos + 2
    d = data[pos + 2]
    if d < 0x80:
        n = (b & 0x7F) | (c & 0x7F) << 7 | d << 14
        return (n >> 1) ^ -(n & 1), pos + 3
    # (bytes past the end read as zeros: `pos` then passes the end, see `_event`)
    word = int.from_bytes(data[pos : pos + 8], "little")
    if word & 0x8080808080808080 == 0x0080808080808080:  # bytes 1-7 go on, byte 8 ends
        word = (word & 0x007F007F007F007F) | (word & 0x7F007F007F007F00) >> 1
        word = (word & 0x00003FFF00003FFF) | (word & 0x3FFF00003FFF0000) >> 2
        n = (word & 0x000000000FFFFFFF) | (word & 0x0FFFFFFF00000000) >> 4
        return (n >> 1) ^ -(n & 1), pos + 8
    n = (b & 0x7F) | (c & 0x7F) << 7 | (d & 0x7F) << 14
    shift = 21
    pos += 3
    while True:
        if shift > 56:  # a 10th byte: fastavro's 64-bit arithmetic decides
            raise _Unread
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos
        shift += 7


def _string(data: bytes, pos: int) -> tuple[str, int]:
    n = data[pos]
    if n < 0x80 and not n & 1:  # the common case: a length under 64, one byte
        pos += 1
        end = pos + (n >> 1)
    else:
        size, pos = _long(data, pos)
        if size < 0:
            raise _Unread
        end = pos + size
    if end > len(data):
        raise _Unread
    return data[pos:end].decode(), end


def _optional_string(data: bytes, pos: int) -> tuple[str | None, int]:
    """``["null", "string"]``: branch 0 (zig-zag byte 0) or 1 (byte 2)."""
    branch = data[pos]
    if branch == 0:
        return None, pos + 1
    if branch != 2:
        raise _Unread
    return _string(data, pos + 1)


def _optional_long(data: bytes, pos: int) -> tuple[int | None, int]:
    """``["null", "long"]`` (or int)."""
    branch = data[pos]
    if branch == 0:
        return None, pos + 1
    if branch != 2:
        raise _Unread
    return _long(data, pos + 1)


def _enum(data: bytes, pos: int, symbols: tuple[str, ...]) -> tuple[str, int]:
    index, pos = _long(data, pos)
    if not 0 <= index < len(symbols):
        raise _Unread
    return symbols[index], pos


def _boolean(data: bytes, pos: int) -> tuple[bool, int]:
    return data[pos] != 0, pos + 1  # fastavro: any byte but 0 is true


def _block(data: bytes, pos: int) -> tuple[int, int]:
    """An array block's item count (0 ends the array); a negative count (a block
    with its size in bytes) is left to the codec."""
    count, pos = _long(data, pos)
    if count < 0:
        raise _Unread
    return count, pos


def _batch(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    batch_id, pos = _string(data, pos)
    at = pos
    org_id, pos = _string(data, pos)
    subject_id, pos = _string(data, pos)
    device_id, pos = _string(data, pos)
    # Every event names the batch's org, subject and device (domain), in the
    # same bytes: read once here, matched per event.
    identity = (data[at:pos], org_id, subject_id, device_id)
    first_seq, pos = _long(data, pos)
    last_seq, pos = _long(data, pos)
    if first_seq < 0 or last_seq < first_seq:  # domain
        raise _Unread
    key_id, pos = _optional_string(data, pos)
    content: bytes | None = None
    branch = data[pos]
    if branch == 2:
        size, pos = _long(data, pos + 1)
        end = pos + size
        if size < 0 or end > len(data):
            raise _Unread
        content, pos = data[pos:end], end
    elif branch == 0:
        pos += 1
    else:
        raise _Unread
    if (key_id is None) != (content is None):  # domain
        raise _Unread
    events = []
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            event, pos = _event(data, pos, identity)
            events.append(event)
        count, pos = _block(data, pos)
    if not events:  # domain
        raise _Unread
    return {
        "batch_id": batch_id,
        "org_id": org_id,
        "subject_id": subject_id,
        "device_id": device_id,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "key_id": key_id,
        "content": content,
        "events": events,
    }, pos


def _event(
    data: bytes, pos: int, identity: tuple[bytes, str, str, str]
) -> tuple[dict[str, Any], int]:
    """A CaptureEvent (v2).

    The hottest code of the sink, hence inlined where a call per field showed:
    a string of under 64 bytes (its length one even byte, zig-zag: ``n & 0x81``
    clear) is sliced here, any other goes to `_string`; a null of a
    ``["null", T]`` union (byte 0) is taken here. A slice past the end is not
    checked for: the bytes after it are then missing too, and the record's
    end does not match (`read_clean_batch`).
    """
    n = data[pos]
    if n & 0x81:
        event_id, pos = _string(data, pos)
    else:
        event_id, pos = data[pos + 1 : pos + 1 + (n >> 1)].decode(), pos + 1 + (n >> 1)
    encoded, org_id, subject_id, device_id = identity
    if not data.startswith(encoded, pos):  # domain (or the same text spelt otherwise)
        raise _Unread
    pos += len(encoded)
    seq, pos = _long(data, pos)
    ts, pos = _long(data, pos)
    if data[pos] == 0:
        received_ts, pos = None, pos + 1
    else:
        received_ts, pos = _optional_long(data, pos)
        if received_ts is not None and received_ts < 0:  # domain
            raise _Unread
    if seq < 0 or ts < 0:  # domain
        raise _Unread
    n = data[pos]
    if n & 0x81:
        app_name, pos = _string(data, pos)
    else:
        app_name, pos = data[pos + 1 : pos + 1 + (n >> 1)].decode(), pos + 1 + (n >> 1)
    if data[pos] == 0:
        window_title, pos = None, pos + 1
    else:
        window_title, pos = _optional_string(data, pos)
    if data[pos] == 0:
        url_host, pos = None, pos + 1
    else:
        url_host, pos = _optional_string(data, pos)
    branch = data[pos]  # the payload union's branch: one byte, zig-zag
    if branch & 1 or branch >> 1 >= len(_PAYLOADS):
        raise _Unread
    payload, pos = _PAYLOADS[branch >> 1](data, pos + 1)
    redactions = []
    if data[pos] == 0:  # no redaction: an empty array is its end, byte 0
        pos += 1
    else:
        count, pos = _block(data, pos)
        while count:
            for _ in range(count):
                rule, pos = _string(data, pos)
                redactions.append(rule)
            count, pos = _block(data, pos)
    if data[pos] == 0:
        consent_version, pos = None, pos + 1
    else:
        consent_version, pos = _optional_long(data, pos)
        if consent_version is not None and consent_version < 0:  # domain
            raise _Unread
    if data[pos] == 0:
        client_version, pos = None, pos + 1
    else:
        client_version, pos = _optional_string(data, pos)
    return {
        "event_id": event_id,
        "org_id": org_id,
        "subject_id": subject_id,
        "device_id": device_id,
        "seq": seq,
        "ts": ts,
        "received_ts": received_ts,
        "app": {"app_name": app_name, "window_title": window_title, "url_host": url_host},
        "payload": payload,
        "redactions": redactions,
        "consent_version": consent_version,
        "client_version": client_version,
    }, pos


# The payload records, in the union's branch order.


def _window_focus(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    previous, pos = _optional_string(data, pos)
    return {"previous_app_name": previous, "type": "WindowFocus"}, pos


def _key_input(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    """Most events; inlined as `_event` is."""
    if data[pos] == 0:
        key, pos = None, pos + 1
    else:
        key, pos = _optional_string(data, pos)
    if data[pos] == 0:
        text, pos = None, pos + 1
    else:
        text, pos = _optional_string(data, pos)
    modifiers = []
    if data[pos] == 0:
        pos += 1
    else:
        count, pos = _block(data, pos)
        while count:
            for _ in range(count):
                modifier, pos = _enum(data, pos, _MODIFIERS)
                modifiers.append(modifier)
            count, pos = _block(data, pos)
        if len(set(modifiers)) != len(modifiers):  # domain
            raise _Unread
    secure = data[pos] != 0  # fastavro: any byte but 0 is true
    n = data[pos + 1]
    if n & 0x80:
        keys, pos = _long(data, pos + 1)
    else:
        keys, pos = (n >> 1) ^ -(n & 1), pos + 2
    if keys < 1:  # domain
        raise _Unread
    return {
        "key": key,
        "text": text,
        "modifiers": modifiers,
        "is_secure_field": secure,
        "count": keys,
        "type": "KeyInput",
    }, pos


def _mouse_move(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    path = []
    count, pos = _block(data, pos)
    while count:
        for _ in range(count):
            dt_ms, pos = _long(data, pos)
            if dt_ms < 0:  # domain
                raise _Unread
            x, pos = _long(data, pos)
            y, pos = _long(data, pos)
            path.append({"dt_ms": dt_ms, "x": x, "y": y})
        count, pos = _block(data, pos)
    return {"path": path, "type": "MouseMove"}, pos


def _mouse_click(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    button, pos = _enum(data, pos, _BUTTONS)
    x, pos = _long(data, pos)
    y, pos = _long(data, pos)
    double, pos = _boolean(data, pos)
    return {"button": button, "x": x, "y": y, "double": double, "type": "MouseClick"}, pos


def _scroll(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    dx, pos = _long(data, pos)
    dy, pos = _long(data, pos)
    return {"dx": dx, "dy": dy, "type": "Scroll"}, pos


def _screen_frame(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    frame_id, pos = _string(data, pos)
    ref, pos = _string(data, pos)
    width, pos = _long(data, pos)
    height, pos = _long(data, pos)
    if width < 0 or height < 0:  # domain
        raise _Unread
    phash, pos = _string(data, pos)
    return {
        "frame_id": frame_id,
        "ref": ref,
        "width": width,
        "height": height,
        "phash": phash,
        "type": "ScreenFrame",
    }, pos


def _ide_edit(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    path_hash, pos = _string(data, pos)
    language, pos = _string(data, pos)
    inserted, pos = _long(data, pos)
    deleted, pos = _long(data, pos)
    if inserted < 0 or deleted < 0:  # domain
        raise _Unread
    diff, pos = _optional_string(data, pos)
    return {
        "path_hash": path_hash,
        "language": language,
        "chars_inserted": inserted,
        "chars_deleted": deleted,
        "diff": diff,
        "type": "IdeEdit",
    }, pos


def _terminal_command(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    command, pos = _string(data, pos)
    exit_code, pos = _optional_long(data, pos)
    cwd_hash, pos = _string(data, pos)
    return {
        "command": command,
        "exit_code": exit_code,
        "cwd_hash": cwd_hash,
        "type": "TerminalCommand",
    }, pos


def _activity_state(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    state, pos = _enum(data, pos, _STATES)
    return {"state": state, "type": "ActivityState"}, pos


_PAYLOADS = (
    _window_focus,
    _key_input,
    _mouse_move,
    _mouse_click,
    _scroll,
    _screen_frame,
    _ide_edit,
    _terminal_command,
    _activity_state,
)
