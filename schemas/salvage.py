"""Reading a `DeviceBatch` event by event: what is left of a cut-off record, and
the first events of one over the size limits.

`schemas.codec.Codec.decode` reads a record whole: a record cut off in its
last event fails as a whole, and its complete events with it. `read_prefix`
reads the same bytes one step at a time — the header fields, then each block
count of the ``events`` array, then each event — and stops at the first step
that does not read, returning everything read before it. An Avro array has no
per-item framing, so nothing after a failed step can be found again; what came
before it is exactly what the writer wrote (Avro reads a prefix of a valid body
the way it reads the body).

An event counts as read only when at least one byte follows it: the body of a
`DeviceBatch` ends with the array's terminating ``00``, so a complete event is
never the last byte, and an event whose last string was cut short (fastavro
then returns the shorter string) ends at the end of the data and is not kept.

Corruption inside a body (not a cut) reads as the events before the damaged
one; the damaged one and those after it are either refused here or decode to
values that `schemas.batch.decode_capture` then checks like any event
(domain, identity, seq range), as it would for a record written that way.

Pure; never blocks. Used by `schemas.batch.decode_capture` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_reader
from fastavro.types import Schema

from schemas.codec import HEADER_SIZE, Datum
from schemas.errors import SchemaDefinitionError, Undecodable
from schemas.registry import SchemaVersion, _strip_logical_types


@dataclass
class Prefix:
    """What `read_prefix` read of a DeviceBatch body.

    ``header`` holds the fields before ``events`` (the reader's version);
    ``events`` each event read completely, in record order, its payload
    tagged as `Codec.decode` tags it, no value domain checked; ``ends[i]`` the
    offset in the data just after ``events[i]``; ``declared`` the number of
    events the array's block counts announced up to where reading stopped
    (all of them when ``complete``); ``stopped`` why reading stopped early
    (None when the body was read to its end); ``limited`` whether it stopped
    at a limit rather than at bytes that do not read.
    """

    header: Datum
    events: list[Datum] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    declared: int = 0
    complete: bool = False
    stopped: str | None = None
    limited: bool = False  # stopped by ``max_end`` / ``max_events``, not by the data


def read_prefix(
    data: bytes,
    writer: SchemaVersion,
    reader: SchemaVersion,
    *,
    max_end: int | None = None,
    max_events: int | None = None,
) -> Prefix:
    """Read ``data`` (a single-object `DeviceBatch` of version ``writer``) as far as it reads.

    Events are resolved into ``reader``'s event record (the current version).
    With ``max_end``, reading stops before an event that would end past that
    offset; with ``max_events``, once that many events are read (``limited``). Raises `Undecodable`
    when the header itself does not read: nothing of such a record can be
    trusted. Never raises anything else.
    """
    plan = _plan(writer, reader)
    stream = BytesIO(data)
    stream.seek(HEADER_SIZE)
    size = len(data)
    try:
        header = schemaless_reader(stream, plan.header_writer, plan.header_reader)
    except Exception as err:  # fastavro raises EOFError, ValueError, IndexError, ...
        raise Undecodable(f"header: {type(err).__name__}: {err!s:.200}") from err
    if not isinstance(header, dict) or stream.tell() >= size:
        raise Undecodable("header: the record ends in its header")
    out = Prefix(header)
    while True:
        try:
            count = _read_long(stream)
        except Undecodable as err:
            out.stopped = f"array block count: {err}"
            return out
        if count == 0:
            if stream.tell() != size:
                out.stopped = f"{size - stream.tell()} trailing bytes after the body"
            else:
                out.complete = True
            return out
        if count < 0:  # a block with its byte size: -count items, then the size
            count = -count
            try:
                _read_long(stream)
            except Undecodable as err:
                out.stopped = f"array block size: {err}"
                return out
        out.declared += count
        for _ in range(count):
            if max_events is not None and len(out.events) >= max_events:
                out.stopped = f"event {len(out.events)} is past the first {max_events}"
                out.limited = True
                return out
            try:
                event = schemaless_reader(
                    stream,
                    plan.event_writer,
                    plan.event_reader,
                    return_record_name=True,
                    return_record_name_override=True,
                )
            except Exception as err:
                out.stopped = f"event {len(out.events)}: {type(err).__name__}: {err!s:.200}"
                return out
            end = stream.tell()
            if end >= size or not isinstance(event, dict):
                out.stopped = f"event {len(out.events)}: the record ends inside it"
                return out
            if max_end is not None and end > max_end:
                out.stopped = f"event {len(out.events)} ends at byte {end}, past {max_end}"
                out.limited = True
                return out
            _untag_payload(event, plan.payload_branches)
            out.events.append(event)
            out.ends.append(end)


def _read_long(stream: BytesIO) -> int:
    """One zig-zag varint (an Avro long); `Undecodable` when the data ends in it."""
    shift = 0
    value = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise Undecodable("the record ends inside a number")
        b = byte[0]
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return (value >> 1) ^ -(value & 1)
        shift += 7
        if shift > 63:
            raise Undecodable("a number longer than 10 bytes")


@dataclass(frozen=True)
class _Plan:
    header_writer: Schema
    header_reader: Schema | None
    event_writer: Schema
    event_reader: Schema | None
    payload_branches: dict[str, str]


_PLANS: dict[tuple[str, int, int], _Plan] = {}


def _plan(writer: SchemaVersion, reader: SchemaVersion) -> _Plan:
    """The header and event schemas of a DeviceBatch version, parsed once."""
    key = (writer.fullname, writer.version, reader.version)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _build_plan(writer, reader)
    return plan


def _build_plan(writer: SchemaVersion, reader: SchemaVersion) -> _Plan:
    w_header, w_event = _split(writer)
    if writer.version == reader.version:
        r_header = r_event = None
        current = w_event
    else:
        r_header, r_event = _split(reader)
        current = r_event
    branches = {}
    for fld in current["fields"]:
        if fld["name"] == "payload":
            for branch in fld["type"]:
                full = branch["name"]
                if "." not in full:
                    full = f"{branch.get('namespace', '')}.{full}".lstrip(".")
                branches[full] = full.rpartition(".")[2]
    if not branches:
        raise SchemaDefinitionError(reader.fullname, "its events have no payload union")
    return _Plan(
        parse_schema(w_header),
        None if r_header is None else parse_schema(r_header),
        parse_schema(w_event),
        None if r_event is None else parse_schema(r_event),
        branches,
    )


def _split(version: SchemaVersion) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the record without its last field ``events``, the events' item record)."""
    expanded = _strip_logical_types(version.expanded)
    fields = expanded["fields"]
    if fields[-1]["name"] != "events":
        raise SchemaDefinitionError(version.fullname, "events must be the last field")
    items = dict(fields[-1]["type"]["items"])
    if "." not in items["name"] and "namespace" not in items:
        items["namespace"] = version.namespace
    header = {**expanded, "fields": fields[:-1]}
    return header, items


def _untag_payload(event: Datum, branches: dict[str, str]) -> None:
    branch, record = event["payload"]
    record["type"] = branches.get(branch, branch.rpartition(".")[2])
    event["payload"] = record
