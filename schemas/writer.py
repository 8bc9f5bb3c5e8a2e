"""A compiled, strictly validating Avro binary writer.

`compile_writer` turns a resolved schema (self-contained JSON; logical types
ignored, values stay raw ints) into Python source, one flat function per
record, and compiles it once per schema version. The generated code checks the
exact Python type of each value (``bool`` is not a ``long``, ``1.5`` is not an
``int``, a ``str`` is not an array) and appends the Avro binary encoding to a
``bytearray``; a failure raises `InvalidField` naming the dotted field path, so
a bad datum never produces bytes and validation needs no second pass.

Why not fastavro's writer: it silently coerces (``True`` -> 1, ``1.5`` -> 1,
``"no"`` -> true) and spends ~20 µs per capture event on per-call schema
handling and trial validation of union branches; this writer is several times
faster and strict. Reading: `schemas.reader` reads bodies of a record's current
version (the same way, compiled once per schema), fastavro everything else
(older versions, with schema resolution, and bytes that reader is not sure of).

Unions: ``["null", T]`` takes ``None`` or a ``T``. A union whose branches are all
records is a *tagged union*: its in-memory value is the record's dict with a
``"type"`` key holding the record's short name (``{"type": "KeyInput", ...}``);
such records may not have a field named ``type``. Other unions and ``fixed``
are refused with `SchemaDefinitionError` (Candor's schemas use neither).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from schemas.canonical import PRIMITIVES, fullname
from schemas.codegen import SourceBuilder
from schemas.errors import InvalidField, SchemaDefinitionError

#: Appends the encoding of one datum to the buffer; raises `InvalidField`.
WriteFn = Callable[[bytearray, Any], None]

TAG = "type"
_RANGES = {"int": (-(1 << 31), (1 << 31) - 1), "long": (-(1 << 63), (1 << 63) - 1)}


#: The two varint bytes (both with the continuation bit) of each 14-bit group:
#: a timestamp in microseconds is an 8-byte varint, which this writes in four
#: steps instead of eight (the loop is the writer's hottest code; the table
#: costs under 1 MB once per process).
_VARINT14 = tuple(bytes(((i & 0x7F) | 0x80, (i >> 7) | 0x80)) for i in range(1 << 14))


def encode_long(out: bytearray, value: int) -> None:
    """Append the zig-zag varint encoding of a signed 64-bit ``value``."""
    n = (value << 1) ^ (value >> 63)
    while n > 0x3FFF:
        out += _VARINT14[n & 0x3FFF]
        n >>= 14
    if n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


_NOTHING: Any = object()


def _fail(path: str, problem: str, value: Any = _NOTHING) -> NoReturn:
    if value is _NOTHING:
        raise InvalidField(path, problem)
    raise InvalidField(path, f"{problem}, got {type(value).__name__} {value!r:.60}")


def _pack_real(pack: Callable[[float], bytes], path: str, value: float) -> bytes:
    try:
        return pack(value)
    except (OverflowError, struct.error) as err:
        raise InvalidField(path, f"{value!r:.60} not representable: {err}") from None


class CompiledWriter:
    """The writer of one schema: call it with ``(out, datum)``; ``source`` is the code."""

    def __init__(self, source: str, entry: WriteFn) -> None:
        self.source = source
        self._entry = entry

    def __call__(self, out: bytearray, datum: Any) -> None:
        """Append ``datum``'s encoding to ``out``; raises `InvalidField`.

        On failure ``out`` may hold a partial encoding; callers discard it.
        """
        try:
            self._entry(out, datum)
        except RecursionError:
            raise InvalidField("", "datum nested too deeply") from None


def compile_writer(schema: Any, namespace: str = "") -> CompiledWriter:
    """Return the `CompiledWriter` of the self-contained JSON ``schema``.

    The top level must be a record. Named types must be defined before they are
    referenced. Raises `SchemaDefinitionError` for unsupported constructs.
    """
    gen = _Generator()
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        raise SchemaDefinitionError("", "the top level of a writer must be a record")
    entry = gen.record(schema, namespace)
    source, fn = gen.run(
        entry,
        dict(
            _fail=_fail,
            _pack_real=_pack_real,
            _long=encode_long,
            _varint14=_VARINT14,
            _Mapping=Mapping,
            _Invalid=InvalidField,
        ),
        f"<avro writer {schema['name']}>",
    )
    return CompiledWriter(source, fn)


class _Generator(SourceBuilder):
    """Emits one Python function per record; values are inlined into it."""

    def __init__(self) -> None:
        super().__init__()
        self._functions: dict[str, str] = {}  # record fullname -> function name
        self._records: dict[str, Mapping[str, Any]] = {}
        self._enums: dict[str, list[str]] = {}

    def record(self, schema: Mapping[str, Any], namespace: str) -> str:
        """Emit the function for record ``schema``; return its name."""
        full = _named_fullname(schema, namespace)
        if full in self._functions:
            raise SchemaDefinitionError(full, "defined twice")
        name = self._fresh("_record")
        self._functions[full] = name
        self._records[full] = schema
        inner = full.rpartition(".")[0]
        # Nested records emit their own functions first, so build the body aside.
        body = _mapping_check("v", "", "expected a mapping", "    ")
        for fld in schema["fields"]:
            fname: str = fld["name"]
            var = self._fresh("f")
            if "default" in fld:
                body.append(f"    {var} = v.get({fname!r}, {self._const(fld['default'])})")
            else:
                body.append("    try:")
                body.append(f"        {var} = v[{fname!r}]")
                body.append("    except KeyError:")
                body.append(f"        _fail({fname!r}, 'missing required field')")
            body.extend(self.value(fld["type"], inner, var, fname, 1))
        self.lines.append(f"def {name}(out, v):")
        self.lines.extend(body)
        self.lines.append("")
        return name

    def value(self, schema: Any, namespace: str, var: str, path: str, depth: int) -> list[str]:
        """Return the lines appending ``var`` (of type ``schema``) to ``out``."""
        if isinstance(schema, list):
            return self._union(schema, namespace, var, path, depth)
        if isinstance(schema, Mapping):
            kind = schema.get("type")
            if kind in ("record", "error"):
                return _call(self.record(schema, namespace), var, path, depth)
            if kind == "enum":
                self._enums[_named_fullname(schema, namespace)] = list(schema["symbols"])
                return self._enum(list(schema["symbols"]), var, path, depth)
            if kind == "fixed":
                raise SchemaDefinitionError(path, "fixed is not supported by the writer")
            if kind == "array":
                return self._array(schema["items"], namespace, var, path, depth)
            if kind == "map":
                return self._map(schema["values"], namespace, var, path, depth)
            return self.value(kind, namespace, var, path, depth)
        if schema in PRIMITIVES:
            return self._primitive(schema, var, path, depth)
        full = fullname(schema, namespace)
        if full in self._functions:
            return _call(self._functions[full], var, path, depth)
        if full in self._enums:
            return self._enum(self._enums[full], var, path, depth)
        raise SchemaDefinitionError(path, f"{full} referenced before its definition")

    def _primitive(self, kind: str, var: str, path: str, depth: int) -> list[str]:
        ind = "    " * depth
        if kind == "null":
            return [
                f"{ind}if {var} is not None:",
                f"{ind}    _fail({path!r}, 'expected null', {var})",
            ]
        if kind == "boolean":
            return [
                f"{ind}if {var} is True:",
                f"{ind}    out.append(1)",
                f"{ind}elif {var} is False:",
                f"{ind}    out.append(0)",
                f"{ind}else:",
                f"{ind}    _fail({path!r}, 'expected bool', {var})",
            ]
        if kind in _RANGES:
            low, high = _RANGES[kind]
            # encode_long inlined: 14 bits (two bytes) per step from a table
            return [
                f"{ind}if type({var}) is not int or not {low} <= {var} <= {high}:",
                f"{ind}    _fail({path!r}, 'expected an int in {kind} range', {var})",
                f"{ind}_n = ({var} << 1) ^ ({var} >> 63)",
                f"{ind}while _n > 16383:",
                f"{ind}    out += _varint14[_n & 16383]",
                f"{ind}    _n >>= 14",
                f"{ind}if _n > 127:",
                f"{ind}    out.append((_n & 127) | 128)",
                f"{ind}    _n >>= 7",
                f"{ind}out.append(_n)",
            ]
        if kind in ("float", "double"):
            pack = self._const(struct.Struct("<d" if kind == "double" else "<f").pack)
            return [
                f"{ind}if type({var}) is not float and type({var}) is not int:",
                f"{ind}    _fail({path!r}, 'expected a float', {var})",
                f"{ind}out += _pack_real({pack}, {path!r}, {var})",
            ]
        if kind == "string":
            return [
                f"{ind}if type({var}) is not str:",
                f"{ind}    _fail({path!r}, 'expected a str', {var})",
                f"{ind}try:",
                f"{ind}    _b = {var}.encode()",
                f"{ind}except UnicodeEncodeError:",
                f"{ind}    _fail({path!r}, 'expected UTF-8 encodable text', {var})",
                *_length("len(_b)", ind),
                f"{ind}out += _b",
            ]
        return [
            f"{ind}if type({var}) is not bytes:",
            f"{ind}    _fail({path!r}, 'expected bytes', {var})",
            *_length(f"len({var})", ind),
            f"{ind}out += {var}",
        ]

    def _enum(self, symbols: list[str], var: str, path: str, depth: int) -> list[str]:
        ind = "    " * depth
        table: dict[str, bytes] = {}
        for index, symbol in enumerate(symbols):
            buf = bytearray()
            encode_long(buf, index)
            table[symbol] = bytes(buf)
        const = self._const(table)
        return [
            f"{ind}_e = {const}.get({var}) if type({var}) is str else None",
            f"{ind}if _e is None:",
            f"{ind}    _fail({path!r}, {f'expected one of {symbols}'!r}, {var})",
            f"{ind}out += _e",
        ]

    def _array(self, items: Any, namespace: str, var: str, path: str, depth: int) -> list[str]:
        ind = "    " * depth
        item = self._fresh("i")
        return [
            f"{ind}if type({var}) is not list and type({var}) is not tuple:",
            f"{ind}    _fail({path!r}, 'expected a list', {var})",
            f"{ind}if {var}:",
            *_length(f"len({var})", ind + "    "),
            f"{ind}    for {item} in {var}:",
            *self.value(items, namespace, item, path + "[]", depth + 2),
            f"{ind}out.append(0)",
        ]

    def _map(self, values: Any, namespace: str, var: str, path: str, depth: int) -> list[str]:
        ind = "    " * depth
        key, item = self._fresh("k"), self._fresh("i")
        return [
            *_mapping_check(var, path, "expected a mapping", ind),
            f"{ind}if {var}:",
            *_length(f"len({var})", ind + "    "),
            f"{ind}    for {key}, {item} in {var}.items():",
            *self._primitive("string", key, path + "{}", depth + 2),
            *self.value(values, namespace, item, path + "{}", depth + 2),
            f"{ind}out.append(0)",
        ]

    def _union(
        self, branches: list[Any], namespace: str, var: str, path: str, depth: int
    ) -> list[str]:
        ind = "    " * depth
        if len(branches) == 2 and "null" in branches:
            null_index = branches.index("null")
            null_byte, other_byte = (0, 2) if null_index == 0 else (2, 0)
            return [
                f"{ind}if {var} is None:",
                f"{ind}    out.append({null_byte})",
                f"{ind}else:",
                f"{ind}    out.append({other_byte})",
                *self.value(branches[1 - null_index], namespace, var, path, depth + 1),
            ]
        if not all(isinstance(b, Mapping) and b.get("type") == "record" for b in branches):
            raise SchemaDefinitionError(path, f"unsupported union {branches!r:.200}")
        dispatch: dict[str, tuple[bytes, str]] = {}
        for index, branch in enumerate(branches):
            if any(f["name"] == TAG for f in branch["fields"]):
                raise SchemaDefinitionError(path, f"tagged union record has a '{TAG}' field")
            short = _named_fullname(branch, namespace).rpartition(".")[2]
            if short in dispatch:
                raise SchemaDefinitionError(path, f"two union branches named {short}")
            prefix = bytearray()
            encode_long(prefix, index)
            dispatch[short] = (bytes(prefix), self.record(branch, namespace))
        # The table refers to functions, so it is emitted after all of them.
        table = self._fresh("_dispatch")
        entries = ", ".join(f"{s!r}: ({p!r}, {fn})" for s, (p, fn) in dispatch.items())
        self.trailer.append(f"{table} = {{{entries}}}")
        known = sorted(dispatch)
        return [
            *_mapping_check(var, path, "expected a mapping with a type key", ind),
            f"{ind}_tag = {var}.get({TAG!r})",
            f"{ind}_t = {table}.get(_tag) if type(_tag) is str else None",
            f"{ind}if _t is None:",
            f"{ind}    _fail({path + '.' + TAG!r}, {f'expected one of {known}'!r}, _tag)",
            f"{ind}out += _t[0]",
            f"{ind}try:",
            f"{ind}    _t[1](out, {var})",
            f"{ind}except _Invalid as _err:",
            f"{ind}    raise _err.within({path!r}) from None",
        ]


def _named_fullname(schema: Mapping[str, Any], namespace: str) -> str:
    name: str = schema["name"]
    if "." in name:
        return name
    return fullname(name, schema.get("namespace", namespace))


def _call(function: str, var: str, path: str, depth: int) -> list[str]:
    ind = "    " * depth
    return [
        f"{ind}try:",
        f"{ind}    {function}(out, {var})",
        f"{ind}except _Invalid as _err:",
        f"{ind}    raise _err.within({path!r}) from None",
    ]


def _mapping_check(var: str, path: str, problem: str, ind: str) -> list[str]:
    # A dict is a Mapping: testing its type first skips ABCMeta.__instancecheck__,
    # the costliest check of a record.
    return [
        f"{ind}if type({var}) is not dict and not isinstance({var}, _Mapping):",
        f"{ind}    _fail({path!r}, {problem!r}, {var})",
    ]


def _length(expr: str, ind: str) -> list[str]:
    """The lines appending the varint of ``expr`` (a length): one byte below 64."""
    return [
        f"{ind}_n = {expr}",
        f"{ind}if _n < 64:",
        f"{ind}    out.append(_n << 1)",
        f"{ind}else:",
        f"{ind}    _long(out, _n)",
    ]
