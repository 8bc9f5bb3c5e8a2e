"""Parsing Canonical Form (PCF) of Avro schemas, as the Avro specification defines it.

Two schemas that read and write the same bytes have the same PCF, whatever their
docs, defaults, aliases, logical types, namespaces-vs-fullnames or whitespace.
Candor fingerprints the PCF (`schemas.fingerprint`), so adding a ``doc`` or a
``logicalType`` to a released schema does not change its fingerprint, while any
change of field names, types or order does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from schemas.errors import SchemaDefinitionError

PRIMITIVES: frozenset[str] = frozenset(
    {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
)
NAMED_TYPES: frozenset[str] = frozenset({"record", "error", "enum", "fixed"})


def fullname(name: str, namespace: str) -> str:
    """Return the fullname of ``name`` seen inside ``namespace`` (spec name resolution)."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def namespace_of(full: str) -> str:
    """Return the namespace part of a fullname (``""`` for a name without dots)."""
    return full.rpartition(".")[0]


def parsing_canonical_form(schema: Any, namespace: str = "") -> str:
    """Return the PCF of a JSON-decoded Avro ``schema`` (dict, list or str).

    ``namespace`` is the enclosing namespace for short names at the top level.
    Named types after their first definition are written as their fullname, as
    the specification requires. Raises `SchemaDefinitionError` for a node that
    is not a valid Avro schema.
    """
    return _canonical(schema, namespace, set())


def _quote(text: str) -> str:
    # [STRINGS]: no escapes beyond what JSON requires.
    return json.dumps(text, ensure_ascii=False)


def _canonical(schema: Any, namespace: str, seen: set[str]) -> str:
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return _quote(schema)
        return _quote(fullname(schema, namespace))
    if isinstance(schema, list):
        return "[" + ",".join(_canonical(branch, namespace, seen) for branch in schema) + "]"
    if not isinstance(schema, Mapping) or "type" not in schema:
        raise SchemaDefinitionError("", f"not an Avro schema: {schema!r}")
    kind = schema["type"]
    if not isinstance(kind, str):
        # {"type": {...}} or {"type": [...]}: the wrapper adds nothing.
        return _canonical(kind, namespace, seen)
    if kind in NAMED_TYPES:
        return _canonical_named(schema, kind, namespace, seen)
    if kind == "array":
        return '{"type":"array","items":' + _canonical(schema["items"], namespace, seen) + "}"
    if kind == "map":
        return '{"type":"map","values":' + _canonical(schema["values"], namespace, seen) + "}"
    # A primitive (possibly carrying a logicalType, which PCF strips) or a reference.
    return _canonical(kind, namespace, seen)


def _canonical_named(schema: Mapping[str, Any], kind: str, namespace: str, seen: set[str]) -> str:
    name = schema["name"]
    full = name if "." in name else fullname(name, schema.get("namespace", namespace))
    if full in seen:
        return _quote(full)
    seen.add(full)
    inner = namespace_of(full)
    parts = ['"name":' + _quote(full), '"type":' + _quote(kind)]
    if kind in ("record", "error"):
        fields = ",".join(
            '{"name":'
            + _quote(field["name"])
            + ',"type":'
            + _canonical(field["type"], inner, seen)
            + "}"
            for field in schema["fields"]
        )
        parts.append('"fields":[' + fields + "]")
    elif kind == "enum":
        parts.append('"symbols":[' + ",".join(_quote(s) for s in schema["symbols"]) + "]")
    else:
        parts.append('"size":' + str(int(schema["size"])))
    return "{" + ",".join(parts) + "}"
