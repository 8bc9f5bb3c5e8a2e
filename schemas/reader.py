"""A compiled Avro binary reader for the current version of a record.

`compile_reader` turns a parsed schema (fastavro's form with logical types
stripped: `schemas.registry.SchemaVersion.parsed`) into Python source, one
flat function per record, compiled once per schema version. It reads the
body from a ``bytes`` object by index, where fastavro's reader calls
``read(1)`` on a file object for every byte of every number and looks each
field's type up in the schema at every read: on the simulator's device
batches it takes 3.6 µs per event where fastavro takes 6.0 (the worker
decodes every event it routes).

It reads only what it is sure of, and gives up (`Unsure`) on anything else,
so that the caller reads the same bytes again with fastavro, whose result
(or error) then stands. It is sure of a body that reads to its last byte
with: union and enum indexes in range, non-negative lengths and array/map
block counts, numbers of at most 9 varint bytes (63 bits: what fastavro's
64-bit arithmetic reads the same way), UTF-8 strings, and nothing past the
end. On such a body it returns what fastavro's ``schemaless_reader`` returns
with the same writer schema and no reader schema, with each record of a
union of records tagged the way `schemas.codec` tags it (a ``"type"`` key
holding the record's short name, added last); a test holds the two readers
to that on random bodies (tests/unit/schemas/test_schemas_reader.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any

from schemas.codegen import SourceBuilder
from schemas.errors import SchemaDefinitionError

#: Reads a body at ``pos`` of ``data``: ``(datum, end offset)``; raises `Unsure`
#: (or an IndexError, UnicodeDecodeError, ...: the caller treats any exception
#: as unsure) when the bytes are not such as it is sure of.
ReadFn = Callable[[bytes, int], tuple[Any, int]]


class Unsure(Exception):
    """The compiled reader is not sure of these bytes: read them with fastavro."""


def _long(data: bytes, pos: int) -> tuple[int, int]:
    """The zig-zag varint at ``pos`` of at most 9 bytes, and the offset after it."""
    b = data[pos]
    n = b & 0x7F
    shift = 7
    pos += 1
    while b & 0x80:
        if shift > 56:  # a 10th byte: past 63 bits, where fastavro's arithmetic wraps
            raise Unsure("a number of 10 bytes")
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _count(data: bytes, pos: int) -> tuple[int, int]:
    """A length or block count (`_long`): non-negative and at most the bytes of
    ``data``, else `Unsure` (a damaged count of items that take no byte, nulls
    say, would keep a loop going for ever: fastavro decides what it is)."""
    n, pos = _long(data, pos)
    if n < 0 or n > len(data):
        raise Unsure("a negative length or block count, or one past the data")
    return n, pos


def _unsure(what: str) -> Any:
    raise Unsure(what)


class CompiledReader:
    """The reader of one schema: call it with ``(data, offset)``; ``source`` is the code."""

    def __init__(self, source: str, entry: ReadFn) -> None:
        self.source = source
        self._entry = entry

    def __call__(self, data: bytes, pos: int) -> Any:
        """Return the datum of the body at ``data[pos:]``, which must end at the
        end of ``data``; raises `Unsure` (or any other exception) when it is not
        sure of the bytes."""
        datum, end = self._entry(data, pos)
        if end != len(data):
            raise Unsure("the body does not end at the end of the data")
        return datum


def compile_reader(schema: Any) -> CompiledReader:
    """Return the `CompiledReader` of a parsed record ``schema`` (names are full).

    Raises `SchemaDefinitionError` for a top level that is not a record, or a
    union of over 63 branches.
    """
    gen = _Generator()
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise SchemaDefinitionError("", "the top level of a reader must be a record")
    entry = gen.record(schema)
    source, fn = gen.run(
        entry,
        dict(
            _long=_long,
            _count=_count,
            _unsure=_unsure,
            _unpack_float=struct.Struct("<f").unpack_from,
            _unpack_double=struct.Struct("<d").unpack_from,
            _from_bytes=int.from_bytes,
        ),
        f"<avro reader {schema['name']}>",
    )
    return CompiledReader(source, fn)


class _Generator(SourceBuilder):
    """Emits one Python function per record, nested records and the branches of
    unions of records inline (branches deeper than `_MAX_INLINE_DEPTH`: a function each)."""

    def __init__(self) -> None:
        super().__init__()
        self._named: dict[str, Mapping[str, Any]] = {}
        self._functions: dict[tuple[str, str | None], str] = {}

    def record(self, schema: Mapping[str, Any], tag: str | None = None) -> str:
        """Emit the function reading record ``schema`` (its dict gets ``"type": tag``
        last when ``tag`` is given); return its name."""
        key = (str(schema["name"]), tag)
        if key in self._functions:
            return self._functions[key]
        name = self._fresh("_record")
        self._functions[key] = name
        self._named[str(schema["name"])] = schema
        body: list[str] = []
        items = self._fields(schema, body, 1)
        if tag is not None:
            items.append(f"'type': {tag!r}")
        self.lines.append(f"def {name}(d, p):")
        self.lines.extend(body)
        self.lines.append(f"    return {{{', '.join(items)}}}, p")
        self.lines.append("")
        return name

    def _fields(self, schema: Mapping[str, Any], body: list[str], depth: int) -> list[str]:
        """Append the lines reading each field of ``schema`` into a variable; return
        the items of the dict display of them (``'name': variable``), in field order."""
        self._named[str(schema["name"])] = schema
        items = []
        for fld in schema["fields"]:
            var = self._fresh("f")
            body.extend(self.value(fld["type"], var, depth))
            items.append(f"{fld['name']!r}: {var}")
        return items

    def value(self, schema: Any, var: str, depth: int) -> list[str]:
        """Return the lines reading a value of type ``schema`` into ``var``."""
        ind = "    " * depth
        if isinstance(schema, list):
            return self._union(schema, var, depth)
        if isinstance(schema, Mapping):
            kind = schema.get("type")
            if kind in ("record", "error"):
                lines: list[str] = []
                items = self._fields(schema, lines, depth)
                return [*lines, f"{ind}{var} = {{{', '.join(items)}}}"]
            if kind == "enum":
                self._named[str(schema["name"])] = schema
                return self._enum(list(schema["symbols"]), var, depth)
            if kind == "fixed":
                self._named[str(schema["name"])] = schema
                size = int(schema["size"])
                return [f"{ind}{var} = d[p:p + {size}]", f"{ind}p += {size}"]
            if kind == "array":
                return self._array(schema["items"], var, depth)
            if kind == "map":
                return self._map(schema["values"], var, depth)
            return self.value(kind, var, depth)
        if schema in _PRIMITIVE_LINES:
            return [ind + line.format(v=var) for line in _PRIMITIVE_LINES[schema]]
        if schema in self._named:
            return self.value(self._named[schema], var, depth)
        raise SchemaDefinitionError(str(schema), "referenced before its definition")

    def _enum(self, symbols: list[str], var: str, depth: int) -> list[str]:
        ind = "    " * depth
        table = self._const(tuple(symbols))
        return [
            f"{ind}_b = d[p]",
            f"{ind}if _b >= {2 * len(symbols)} or _b & 1:",
            f"{ind}    _unsure('an enum index out of range')",
            f"{ind}{var} = {table}[_b >> 1]",
            f"{ind}p += 1",
        ]

    def _array(self, items: Any, var: str, depth: int) -> list[str]:
        item = self._fresh("_i")
        reads = self.value(items, item, depth + 2)
        return self._blocks(var, "[]", reads, f"{var}.append({item})", depth)

    def _map(self, values: Any, var: str, depth: int) -> list[str]:
        key, item = self._fresh("_k"), self._fresh("_i")
        reads = [*self.value("string", key, depth + 2), *self.value(values, item, depth + 2)]
        return self._blocks(var, "{}", reads, f"{var}[{key}] = {item}", depth)

    def _blocks(self, var: str, empty: str, reads: list[str], store: str, depth: int) -> list[str]:
        """The lines reading an array's or a map's blocks into ``var`` (starting as
        ``empty``): per item the ``reads`` lines (indented for the inner loop), then
        ``store``."""
        ind = "    " * depth
        count = self._fresh("_c")
        return [
            f"{ind}{var} = {empty}",
            *_block_count(count, ind),
            f"{ind}while {count}:",
            f"{ind}    for _ in range({count}):",
            *reads,
            f"{ind}        {store}",
            *_block_count(count, ind + "    "),
        ]

    def _union(self, branches: list[Any], var: str, depth: int) -> list[str]:
        ind = "    " * depth
        resolved: list[Any] = [self._named.get(b, b) if isinstance(b, str) else b for b in branches]
        records = all(isinstance(b, Mapping) and b.get("type") == "record" for b in resolved)
        if records and depth <= _MAX_INLINE_DEPTH and len(branches) <= 63:
            # the branches inline, as nested records are: a call per event's
            # payload cost ~5% of reading a device batch
            lines = [f"{ind}_b = d[p]", f"{ind}p += 1"]
            for index, branch in enumerate(resolved):
                keyword = "if" if index == 0 else "elif"
                lines.append(f"{ind}{keyword} _b == {2 * index}:")
                body: list[str] = []
                items = self._fields(branch, body, depth + 1)
                items.append(f"'type': {str(branch['name']).rpartition('.')[2]!r}")
                lines.extend(body)
                lines.append(f"{ind}    {var} = {{{', '.join(items)}}}")
            lines.append(f"{ind}else:")
            lines.append(f"{ind}    _unsure('a union index out of range')")
            return lines
        if records:
            functions = [self.record(b, str(b["name"]).rpartition(".")[2]) for b in resolved]
            table = self._fresh("_branches")
            self.trailer.append(f"{table} = ({', '.join(functions)},)")
            return [
                f"{ind}_b = d[p]",
                f"{ind}if _b >= {2 * len(branches)} or _b & 1:",
                f"{ind}    _unsure('a union index out of range')",
                f"{ind}{var}, p = {table}[_b >> 1](d, p + 1)",
            ]
        if len(branches) > 63:
            raise SchemaDefinitionError(str(branches)[:80], "a union of over 63 branches")
        lines = [f"{ind}_b = d[p]", f"{ind}p += 1"]
        for index, branch in enumerate(branches):
            keyword = "if" if index == 0 else "elif"
            lines.append(f"{ind}{keyword} _b == {2 * index}:")
            lines.extend(self.value(branch, var, depth + 1))
        lines.append(f"{ind}else:")
        lines.append(f"{ind}    _unsure('a union index out of range')")
        return lines


#: The deepest indentation at which a union of records is read inline (deeper, a
#: function per branch): Python refuses more than 20 nested blocks in a function.
_MAX_INLINE_DEPTH = 6


def _block_count(var: str, ind: str) -> list[str]:
    """The lines reading an array or map block count into ``var``: one byte inline
    (an empty array's terminating 0 included), a longer one by `_count`."""
    return [
        f"{ind}{var} = d[p]",
        f"{ind}if {var} < 128 and not {var} & 1:",
        f"{ind}    {var} >>= 1",
        f"{ind}    p += 1",
        f"{ind}else:",
        f"{ind}    {var}, p = _count(d, p)",
    ]


#: The lines reading each primitive into ``{v}`` (indented by the caller).
_PRIMITIVE_LINES: dict[str, tuple[str, ...]] = {
    "null": ("{v} = None",),
    "boolean": ("{v} = d[p] != 0", "p += 1"),
    # `_long` inlined: a call costs as much as the loop. Two lengths are the
    # common ones and skip the loop: 2 bytes (mouse coordinates, path deltas)
    # and 8 (a timestamp in microseconds, in every event), read as one 64-bit
    # word whose 7-bit groups are packed together in three mask-and-shift steps
    # (pairs of groups, then fours, then the two halves): ~40% less time than
    # the loop's eight turns. The word takes only a varint of exactly 8 bytes
    # (bytes 1-7 with the continuation bit, the 8th without); the loop reads
    # every other length. Near the end of the data the slice is short and reads
    # as 0 past it: the offset then lands past the end, where the caller is
    # unsure (`CompiledReader`), as the loop is when it runs off the end.
    "int": (
        "_b = d[p]",
        "p += 1",
        "if _b < 128:",
        "    {v} = (_b >> 1) ^ -(_b & 1)",
        "else:",
        "    _n = d[p]",
        "    if _n < 128:",
        "        _n = (_b & 127) | _n << 7",
        "        p += 1",
        "    else:",
        "        _n = _from_bytes(d[p - 1:p + 7], 'little')",
        "        if _n & 0x8080808080808080 == 0x0080808080808080:",
        "            _n = (_n & 0x007F007F007F007F) | (_n & 0x7F007F007F007F00) >> 1",
        "            _n = (_n & 0x00003FFF00003FFF) | (_n & 0x3FFF00003FFF0000) >> 2",
        "            _n = (_n & 0x000000000FFFFFFF) | (_n & 0x0FFFFFFF00000000) >> 4",
        "            p += 7",
        "        else:",
        "            _n = _b & 127",
        "            _s = 7",
        "            while _b & 128:",
        "                if _s > 56:",
        "                    _unsure('a number of 10 bytes')",
        "                _b = d[p]",
        "                p += 1",
        "                _n |= (_b & 127) << _s",
        "                _s += 7",
        "    {v} = (_n >> 1) ^ -(_n & 1)",
    ),
    "float": ("{v} = _unpack_float(d, p)[0]", "p += 4"),
    "double": ("{v} = _unpack_double(d, p)[0]", "p += 8"),
    "bytes": (
        "_b = d[p]",
        "if _b < 128 and not _b & 1:",
        "    _n = _b >> 1",
        "    p += 1",
        "else:",
        "    _n, p = _count(d, p)",
        "{v} = d[p:p + _n]",
        "p += _n",
    ),
}
_PRIMITIVE_LINES["long"] = _PRIMITIVE_LINES["int"]
_PRIMITIVE_LINES["string"] = (
    *_PRIMITIVE_LINES["bytes"][:-2],
    "{v} = d[p:p + _n].decode()",
    "p += _n",
)
