"""Avro single-object encoding of Candor records: the bytes on every Candor topic.

Wire format (Avro specification, "single object encoding")::

    C3 01 | fingerprint: 8 bytes, little-endian CRC-64-AVRO of the writer schema | Avro binary body

Writers always use the *current* version of a record. Readers look the writer
version up by fingerprint and resolve it into the current version (Avro schema
resolution), so a consumer reads every released version without a registry
service.

In-memory form: plain dicts as the writers produced them; timestamps are ints
(microseconds); a tagged union (``CaptureEvent.payload``) is the branch record
with a ``"type"`` key holding its short name.

Errors: encode raises `InvalidField` (or `UnknownSchema` for an unknown record
name); decode raises only `Undecodable`, `UnknownSchema` or `InvalidField`,
whatever the input bytes. The module-level functions use `default_codec`, built
once per process from the packaged schemas.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader

from schemas.domain import CHECKS, Check
from schemas.errors import (
    InvalidField,
    SchemaDefinitionError,
    SchemaError,
    Undecodable,
    UnknownSchema,
)
from schemas.reader import CompiledReader, compile_reader
from schemas.registry import SINGLE_OBJECT_MARKER, Registry, SchemaVersion, default_registry
from schemas.writer import CompiledWriter, compile_writer

HEADER_SIZE = 10
CAPTURE_EVENT = "CaptureEvent"
CONSENT_POLICY = "ConsentPolicy"

Datum = dict[str, Any]


class Codec:
    """Encodes and decodes every record of one `Registry`; immutable, thread-safe.

    Building it compiles a writer for the current version of each record and
    a reader for every version, so per-message work is lookups plus the body.
    """

    def __init__(self, registry: Registry) -> None:
        """Prepare writers and readers for all of ``registry``.

        Raises `SchemaDefinitionError` for a schema the writer cannot compile.
        """
        self.registry = registry
        self._writers: dict[str, _Writer] = {}
        self._readers: dict[bytes, _Reader] = {}
        self._by_version: dict[tuple[str, int], _Reader] = {}
        for name in registry.names():
            current = registry.latest(name)
            writer = _Writer(current)
            self._writers[current.fullname] = self._writers[current.name] = writer
            for version in registry.versions(name):
                reader = _Reader(version, current)
                self._readers[version.single_object_header[2:]] = reader
                self._by_version[(version.fullname, version.version)] = reader

    def current(self, name: str) -> SchemaVersion:
        """Return the version ``encode`` writes for ``name``; raises `UnknownSchema`."""
        return self._writer(name).version

    def encode(self, name: str, datum: Mapping[str, Any], *, check_domains: bool = True) -> bytes:
        """Return ``datum`` as a single-object message of record ``name`` (current version).

        ``name`` is short (``"CaptureEvent"``) or full. Raises `UnknownSchema`
        for an unknown name, `InvalidField` (with the field path) when the datum
        does not fit the schema or its value domains. ``check_domains=False``
        skips the value-domain checks (types are always checked): for records a
        stream worker derived from input it decoded, hence checked, already;
        their readers check again when decoding. Pure; never blocks.
        """
        writer = self._writer(name)
        return writer.encode(writer.header, datum, check_domains)

    def encode_with_header(self, name: str, datum: Mapping[str, Any], header: bytes) -> bytes:
        """Like `encode`, but put ``header`` before the body instead of the single-object header."""
        return self._writer(name).encode(header, datum, True)

    def decode(self, data: bytes) -> tuple[str, Datum]:
        """Return ``(short record name, datum)`` read from a single-object message.

        The datum has the fields of the record's *current* version (defaults
        fill fields older writers lacked). Raises `Undecodable` (bad marker,
        truncated, garbage or trailing bytes), `UnknownSchema` (fingerprint not
        in the registry) or `InvalidField` (decoded value out of its domain),
        and nothing else, for any input.
        """
        if not isinstance(data, bytes):
            if not isinstance(data, bytearray | memoryview):
                raise Undecodable(f"expected bytes, got {type(data).__name__}")
            data = bytes(data)
        if len(data) < HEADER_SIZE or data[:2] != SINGLE_OBJECT_MARKER:
            raise Undecodable("no single-object header (C3 01 + 8-byte fingerprint)")
        reader = self._readers.get(data[2:HEADER_SIZE])
        if reader is None:
            fingerprint = int.from_bytes(data[2:HEADER_SIZE], "little")
            raise UnknownSchema(f"fingerprint {fingerprint:#018x} not in the registry")
        return reader.name, reader.read(data, HEADER_SIZE)

    def name_of(self, data: bytes) -> str | None:
        """The short record name ``data``'s single-object header names, without
        decoding the body; None for no header or an unknown fingerprint."""
        if len(data) < HEADER_SIZE or data[:2] != SINGLE_OBJECT_MARKER:
            return None
        reader = self._readers.get(bytes(data[2:HEADER_SIZE]))
        return None if reader is None else reader.name

    def decode_body(self, version: SchemaVersion, data: bytes, offset: int) -> Datum:
        """Read the body at ``data[offset:]`` written with ``version``; errors as `decode`."""
        reader = self._by_version.get((version.fullname, version.version))
        if reader is None:
            raise UnknownSchema(f"{version.fullname} v{version.version} not in this codec")
        return reader.read(bytes(data), offset)

    def decode_many(
        self, batch: Iterable[bytes], expect: str | None = CAPTURE_EVENT
    ) -> list[Datum | SchemaError]:
        """Decode each message of ``batch``; a failure is returned in its place, not raised.

        With ``expect`` set, a message of another record becomes `UnknownSchema`.
        """
        results: list[Datum | SchemaError] = []
        for data in batch:
            try:
                name, datum = self.decode(data)
                if expect is not None and name != expect:
                    raise UnknownSchema(f"expected {expect}, got {name}")
                results.append(datum)
            except SchemaError as err:
                results.append(err)
        return results

    def _writer(self, name: str) -> _Writer:
        writer = self._writers.get(name)
        if writer is None:
            raise UnknownSchema(f"no record named {name!r}")
        return writer


class _Writer:
    """Encoder of the current version of one record."""

    def __init__(self, version: SchemaVersion) -> None:
        self.version = version
        self.header = version.single_object_header
        self._write: CompiledWriter = compile_writer(version.expanded)
        self._check: Check | None = CHECKS.get(version.name)

    def encode(self, header: bytes, datum: Mapping[str, Any], check_domains: bool) -> bytes:
        out = bytearray(header)
        self._write(out, datum)
        if check_domains and self._check is not None:
            _run_check(self._check, datum)
        return bytes(out)


class _Reader:
    """Decoder of one writer version into the current version of its record.

    Unions of records: fastavro names the branch it read only when asked to
    return ``(branch, record)`` tuples (``return_record_name``), which costs
    about a microsecond per event (it looks the union's branches over again at
    every read). When the writer is the current version and the schema allows
    it (`_first_field_plan`), the union is read without tuples and the branch
    told by the first key of the record read: fastavro fills a record in its
    writer's field order, and each branch has its own first field. The datum
    is the same either way (tests/unit/schemas/test_schemas_union_read.py
    holds fastavro to that).

    A body of the current version is read first by a `schemas.reader`
    compiled for it (about 40% less time than fastavro on a capture event);
    when that reader is not sure of the bytes, fastavro reads them and its
    datum or error stands.
    """

    def __init__(self, writer: SchemaVersion, current: SchemaVersion) -> None:
        self.name = current.name
        self._writer_schema = writer.parsed
        # No resolution step when the writer is the current version.
        self._reader_schema = None if writer is current else current.parsed
        self._tagged = _tagged_fields(current)
        self._by_first = None if writer is not current else _first_field_plan(current)
        self._check: Check | None = CHECKS.get(current.name)
        self._compiled = None if self._by_first is None else _compiled_reader(current)

    def read(self, data: bytes, offset: int) -> Datum:
        compiled = self._compiled
        if compiled is not None:
            try:
                read: Datum = compiled(data, offset)
            except Exception:  # not sure of these bytes (or they are bad): fastavro decides
                pass
            else:
                if self._check is not None:
                    _run_check(self._check, read)
                return read
        stream = BytesIO(data)
        stream.seek(offset)
        by_first = self._by_first
        try:
            if by_first is not None:
                datum = schemaless_reader(stream, self._writer_schema, None)
            else:
                datum = schemaless_reader(
                    stream,
                    self._writer_schema,
                    self._reader_schema,
                    return_record_name=True,
                    return_record_name_override=True,
                )
        except Exception as err:  # fastavro raises EOFError, ValueError, IndexError, ...
            raise Undecodable(f"{type(err).__name__}: {err!s:.200}") from err
        if stream.tell() != len(data):
            raise Undecodable(f"{len(data) - stream.tell()} trailing bytes after the body")
        if not isinstance(datum, dict):
            raise Undecodable(f"body decoded to {type(datum).__name__}, not a record")
        if by_first is not None:
            _tag_by_first_field(datum, by_first)
        else:
            _untag(datum, self._tagged)
        if self._check is not None:
            _run_check(self._check, datum)
        return datum


def _compiled_reader(version: SchemaVersion) -> CompiledReader | None:
    """The `schemas.reader` of ``version``, or None for a schema it does not read
    (fastavro alone reads that one)."""
    try:
        return compile_reader(version.parsed)
    except SchemaDefinitionError:
        return None


def _run_check(check: Check, datum: Mapping[str, Any]) -> None:
    try:
        check(datum)
    except SchemaError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidField("", f"{type(err).__name__}: {err}") from err


def _tagged_fields(version: SchemaVersion) -> tuple[_Tagged, ...]:
    """Return the plan that turns fastavro's ``(branch, record)`` pairs into tagged dicts.

    Supported places for a union of records: a top-level field, or a top-level
    field of the records of a top-level array (``DeviceBatch.events[].payload``).
    """
    tagged = _tag_plan(version.expanded)
    if _count_planned(tagged) != _count_record_unions(version.expanded):
        raise SchemaDefinitionError(
            version.fullname,
            "unions of records are only supported at the top level or in records of a "
            "top-level array",
        )
    return tagged


#: (field, {branch fullname: short name}, plan for the records of an array field).
_Tagged = tuple[str, dict[str, str], tuple[Any, ...]]


def _tag_plan(record: Mapping[str, Any], *, nested: bool = False) -> tuple[_Tagged, ...]:
    tagged: list[_Tagged] = []
    for fld in record["fields"]:
        branches = fld["type"]
        if isinstance(branches, list) and all(
            isinstance(b, dict) and b.get("type") == "record" for b in branches
        ):
            names = {}
            for b in branches:
                full = b["name"] if "." in b["name"] else f"{b.get('namespace', '')}.{b['name']}"
                names[full.lstrip(".")] = full.rpartition(".")[2]
            tagged.append((fld["name"], names, ()))
        elif (
            not nested
            and isinstance(branches, dict)
            and branches.get("type") == "array"
            and isinstance(branches["items"], dict)
            and branches["items"].get("type") == "record"
        ):
            inner = _tag_plan(branches["items"], nested=True)
            if inner:
                tagged.append((fld["name"], {}, inner))
    return tuple(tagged)


def _count_planned(plan: tuple[_Tagged, ...]) -> int:
    return sum(1 if names else _count_planned(inner) for _, names, inner in plan)


def _untag(datum: Datum, plan: tuple[_Tagged, ...]) -> None:
    for field, short_names, inner in plan:
        if short_names:
            branch_name, record = datum[field]
            record["type"] = short_names[branch_name]
            datum[field] = record
        else:
            for item in datum[field]:
                _untag(item, inner)


def _first_field_plan(version: SchemaVersion) -> tuple[_Tagged, ...] | None:
    """`_tag_plan` with each union's branches keyed by their first field's name
    (``{first field: short name}``), for reading ``version`` without fastavro's
    ``(branch, record)`` tuples; None when that would not give the same datum.

    It gives the same datum when, in each union of records, every branch has
    at least one field and no two share their first one (so the first key of
    the record read names its branch), and no other union holds a named type
    (a record, enum or fixed: ``return_record_name`` makes tuples of some of
    those, which a plain read would not).
    """
    expanded = version.expanded
    if any(_holds_named_type(u) for u in _unions(expanded) if not _all_records(u)):
        return None
    plan = _first_fields(expanded)
    if plan is None or _count_planned(plan) != _count_record_unions(expanded):
        return None
    return plan


def _first_fields(record: Mapping[str, Any]) -> tuple[_Tagged, ...] | None:
    plan: list[_Tagged] = []
    for fld in record["fields"]:
        kind = fld["type"]
        if isinstance(kind, list) and _all_records(kind):
            firsts: dict[str, str] = {}
            for branch in kind:
                fields = branch["fields"]
                if not fields or fields[0]["name"] in firsts:
                    return None
                firsts[fields[0]["name"]] = branch["name"].rpartition(".")[2]
            plan.append((fld["name"], firsts, ()))
        elif isinstance(kind, dict) and kind.get("type") == "array":
            items = kind["items"]
            if isinstance(items, dict) and items.get("type") == "record":
                inner = _first_fields(items)
                if inner is None:
                    return None
                if inner:
                    plan.append((fld["name"], {}, inner))
    return tuple(plan)


def _tag_by_first_field(datum: Datum, plan: tuple[_Tagged, ...]) -> None:
    """`_untag` for a datum read without tuples, with a `_first_field_plan`."""
    for field, firsts, inner in plan:
        if firsts:
            record = datum[field]
            record["type"] = firsts[next(iter(record))]
        elif len(inner) == 1 and inner[0][1]:
            # one union in each item (DeviceBatch.events[].payload): inlined, it
            # runs for every event of a batch
            name, item_firsts, _ = inner[0]
            for item in datum[field]:
                record = item[name]
                record["type"] = item_firsts[next(iter(record))]
        else:
            for item in datum[field]:
                _tag_by_first_field(item, inner)


def _unions(node: Any) -> list[list[Any]]:
    """Every union in the expanded schema ``node``, nested ones included."""
    if isinstance(node, list):
        return [node, *(u for branch in node for u in _unions(branch))]
    if isinstance(node, dict):
        nested = [f["type"] for f in node.get("fields", ())]
        nested += [node[k] for k in ("items", "values") if k in node]
        return [u for n in nested for u in _unions(n)]
    return []


def _all_records(union: list[Any]) -> bool:
    return all(isinstance(b, dict) and b.get("type") == "record" for b in union)


#: Avro's primitive type names: any other name in an expanded schema refers to a
#: named type defined earlier in it.
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


def _holds_named_type(union: list[Any]) -> bool:
    return any(
        (isinstance(b, dict) and b.get("type") in ("record", "enum", "fixed"))
        or (isinstance(b, str) and b not in _PRIMITIVES)
        for b in union
    )


def _count_record_unions(node: Any) -> int:
    if isinstance(node, list):
        records = [b for b in node if isinstance(b, dict) and b.get("type") == "record"]
        own = int(bool(node) and len(records) == len(node))
        return own + sum(_count_record_unions(b) for b in node)
    if isinstance(node, dict):
        nested = [f["type"] for f in node.get("fields", ())]
        nested += [node[k] for k in ("items", "values") if k in node]
        return sum(_count_record_unions(n) for n in nested)
    return 0


@functools.cache
def default_codec() -> Codec:
    """Return the codec of the packaged schemas, built once per process."""
    return Codec(default_registry())


def encode(name: str, datum: Mapping[str, Any], *, check_domains: bool = True) -> bytes:
    """`Codec.encode` on the default codec."""
    return default_codec().encode(name, datum, check_domains=check_domains)


def decode(data: bytes) -> tuple[str, Datum]:
    """`Codec.decode` on the default codec."""
    return default_codec().decode(data)


def decode_many(
    batch: Iterable[bytes], expect: str | None = CAPTURE_EVENT
) -> list[Datum | SchemaError]:
    """`Codec.decode_many` on the default codec."""
    return default_codec().decode_many(batch, expect)


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Encode a capture event (shared contract dict) as a CaptureEvent message."""
    return default_codec().encode(CAPTURE_EVENT, event)


def decode_event(data: bytes) -> Datum:
    """Decode a CaptureEvent message; another record raises `UnknownSchema`."""
    name, datum = default_codec().decode(data)
    if name != CAPTURE_EVENT:
        raise UnknownSchema(f"expected {CAPTURE_EVENT}, got {name}")
    return datum


def encode_consent(policy: Mapping[str, Any]) -> bytes:
    """Encode a consent policy dict as a ConsentPolicy message."""
    return default_codec().encode(CONSENT_POLICY, policy)


def decode_consent(data: bytes) -> Datum:
    """Decode a ConsentPolicy message; another record raises `UnknownSchema`."""
    name, datum = default_codec().decode(data)
    if name != CONSENT_POLICY:
        raise UnknownSchema(f"expected {CONSENT_POLICY}, got {name}")
    return datum
