"""The registry of every released version of every Candor record.

Layout on disk (package data, never edited once released)::

    schemas/avro/<namespace>/<Record>.v<N>.avsc

One record per file. A file refers to records of other files by name and pins
the version it means in ``"x-candor-uses": {"<fullname>": <version>}``, so a
released version's full schema (and fingerprint) never changes when a record
it uses gets a new version. Enums are defined inline in the record that owns
them. The highest version of a record is its *current* version: the one
writers use and readers resolve into.

The registry is built once (`Registry.load`, or the cached `default_registry`)
and is immutable afterwards; lookups are dict reads.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from fastavro.types import Schema

from schemas.canonical import NAMED_TYPES, PRIMITIVES, fullname, parsing_canonical_form
from schemas.errors import SchemaDefinitionError, UnknownSchema
from schemas.fingerprint import crc64_avro, to_wire

#: Directory of the packaged `.avsc` tree.
PACKAGE_ROOT: Path = Path(__file__).resolve().parent / "avro"
#: Property holding a file's pinned references: fullname -> version.
USES_PROPERTY = "x-candor-uses"
#: Two bytes opening every single-object encoded message (Avro spec).
SINGLE_OBJECT_MARKER = b"\xc3\x01"

_FILE_NAME = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


@dataclass(frozen=True)
class SchemaVersion:
    """One released version of one record, fully resolved.

    ``expanded`` is self-contained JSON (references inlined, logical types kept):
    what another Avro library should parse. ``parsed`` is fastavro's parsed form
    of the same schema with logical types stripped, so timestamps stay ``int``
    microseconds in Python; PCF ignores logical types, so both share
    ``fingerprint``.
    """

    fullname: str
    version: int
    path: Path
    expanded: Mapping[str, Any]
    canonical_form: str
    fingerprint: int
    parsed: Schema = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """The short record name, e.g. ``"CaptureEvent"``."""
        return self.fullname.rpartition(".")[2]

    @property
    def namespace(self) -> str:
        """The record's namespace, e.g. ``"candor.capture.v1"``."""
        return self.fullname.rpartition(".")[0]

    @property
    def single_object_header(self) -> bytes:
        """Marker plus little-endian fingerprint: the 10 bytes opening each message."""
        return SINGLE_OBJECT_MARKER + to_wire(self.fingerprint)


class Registry:
    """Immutable index of schema versions by name, version and fingerprint.

    Names may be given as fullnames or as short names; a registry refuses to
    hold two records with the same short name, so short names are unambiguous.
    """

    def __init__(self, versions: list[SchemaVersion]) -> None:
        """Index ``versions``; raises `SchemaDefinitionError` on duplicates."""
        self._by_name: dict[str, dict[int, SchemaVersion]] = {}
        self._by_fingerprint: dict[int, SchemaVersion] = {}
        self._short: dict[str, str] = {}
        for sv in sorted(versions, key=lambda v: (v.fullname, v.version)):
            per_name = self._by_name.setdefault(sv.fullname, {})
            if sv.version in per_name:
                raise SchemaDefinitionError(sv.fullname, f"version {sv.version} defined twice")
            clash = self._by_fingerprint.get(sv.fingerprint)
            if clash is not None:
                raise SchemaDefinitionError(
                    sv.fullname,
                    f"v{sv.version} has the same canonical form as "
                    f"{clash.fullname} v{clash.version}; a new version must change the schema",
                )
            owner = self._short.setdefault(sv.name, sv.fullname)
            if owner != sv.fullname:
                raise SchemaDefinitionError(sv.fullname, f"short name clashes with {owner}")
            per_name[sv.version] = sv
            self._by_fingerprint[sv.fingerprint] = sv

    @classmethod
    def load(cls, root: Path = PACKAGE_ROOT) -> Registry:
        """Load every ``<namespace>/<Record>.v<N>.avsc`` under ``root``.

        Blocks on file reads. Raises `SchemaDefinitionError` for a misnamed file,
        a file whose record name or namespace disagrees with its path, an
        unpinned or missing reference, or conflicting pins.
        """
        return cls(_Loader(root).load_all())

    def fullname(self, name: str) -> str:
        """Return the fullname for a short or full ``name``; raises `UnknownSchema`."""
        if name in self._by_name:
            return name
        try:
            return self._short[name]
        except KeyError:
            raise UnknownSchema(f"no record named {name!r}") from None

    def get(self, name: str, version: int) -> SchemaVersion:
        """Return version ``version`` of record ``name``; raises `UnknownSchema`."""
        try:
            return self._by_name[self.fullname(name)][version]
        except KeyError:
            raise UnknownSchema(f"{name!r} has no version {version}") from None

    def latest(self, name: str) -> SchemaVersion:
        """Return the current (highest) version of ``name``; raises `UnknownSchema`."""
        per_name = self._by_name[self.fullname(name)]
        return per_name[max(per_name)]

    def versions(self, name: str) -> tuple[SchemaVersion, ...]:
        """Return every version of ``name``, oldest first; raises `UnknownSchema`."""
        per_name = self._by_name[self.fullname(name)]
        return tuple(per_name[v] for v in sorted(per_name))

    def by_fingerprint(self, fingerprint: int) -> SchemaVersion:
        """Return the version whose CRC-64-AVRO fingerprint is ``fingerprint``.

        Raises `UnknownSchema` when no loaded version has it.
        """
        try:
            return self._by_fingerprint[fingerprint]
        except KeyError:
            raise UnknownSchema(f"fingerprint {fingerprint:#018x} not in the registry") from None

    def names(self) -> tuple[str, ...]:
        """Return the fullnames of all records, sorted."""
        return tuple(sorted(self._by_name))

    def __iter__(self) -> Iterator[SchemaVersion]:
        """Iterate over every version of every record, by name then version."""
        for name in self.names():
            yield from self.versions(name)

    def __len__(self) -> int:
        """Return the number of schema versions held."""
        return len(self._by_fingerprint)


@functools.cache
def default_registry() -> Registry:
    """Return the registry of the packaged schemas, loaded once per process."""
    return Registry.load()


class _Loader:
    """Reads the `.avsc` tree and expands each file into a self-contained schema."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._files: dict[tuple[str, int], tuple[Path, dict[str, Any]]] = {}

    def load_all(self) -> list[SchemaVersion]:
        for path in sorted(self._root.glob("*/*.avsc")):
            self._read(path)
        if not self._files:
            raise SchemaDefinitionError("", f"no .avsc files under {self._root}")
        return [self._build(full, version) for full, version in sorted(self._files)]

    def _read(self, path: Path) -> None:
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise SchemaDefinitionError(str(path), "file name must be <Record>.v<N>.avsc")
        try:
            definition = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SchemaDefinitionError(str(path), f"unreadable: {err}") from err
        namespace = path.parent.name
        if (
            not isinstance(definition, dict)
            or definition.get("type") != "record"
            or definition.get("name") != match["name"]
            or definition.get("namespace") != namespace
        ):
            raise SchemaDefinitionError(
                str(path), f"must define record {match['name']} in namespace {namespace}"
            )
        self._files[(f"{namespace}.{match['name']}", int(match["version"]))] = (path, definition)

    def _build(self, full: str, version: int) -> SchemaVersion:
        path, _ = self._files[(full, version)]
        expanded = self._expand(full, version, {})
        canonical = parsing_canonical_form(expanded)
        try:
            parsed = fastavro.parse_schema(_strip_logical_types(expanded), named_schemas={})
        except Exception as err:  # fastavro raises several types for a bad schema
            raise SchemaDefinitionError(str(path), f"rejected by fastavro: {err}") from err
        return SchemaVersion(
            fullname=full,
            version=version,
            path=path,
            expanded=expanded,
            canonical_form=canonical,
            fingerprint=crc64_avro(canonical.encode("utf-8")),
            parsed=parsed,
        )

    def _expand(self, full: str, version: int, defined: dict[str, int | None]) -> dict[str, Any]:
        """Return file (full, version) with its references inlined once, in place order.

        ``defined`` maps each named type already written in this schema to the
        file version it came from (None for inline enums), so a name is defined
        once and later occurrences stay references.
        """
        try:
            path, definition = self._files[(full, version)]
        except KeyError:
            raise SchemaDefinitionError(full, f"pinned version {version} does not exist") from None
        defined[full] = version
        pins = definition.get(USES_PROPERTY, {})
        record = copy.deepcopy(definition)
        record.pop(USES_PROPERTY, None)
        namespace = record["namespace"]
        for fld in record["fields"]:
            fld["type"] = self._expand_type(fld["type"], namespace, pins, defined, path)
        return record

    def _expand_type(
        self,
        node: Any,
        namespace: str,
        pins: Mapping[str, int],
        defined: dict[str, int | None],
        path: Path,
    ) -> Any:
        if isinstance(node, list):
            return [self._expand_type(b, namespace, pins, defined, path) for b in node]
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in NAMED_TYPES:
                name = fullname(node["name"], node.get("namespace", namespace))
                if name in defined:
                    raise SchemaDefinitionError(str(path), f"{name} defined twice")
                defined[name] = None
                return node
            if kind == "array":
                items = self._expand_type(node["items"], namespace, pins, defined, path)
                return {**node, "items": items}
            if kind == "map":
                values = self._expand_type(node["values"], namespace, pins, defined, path)
                return {**node, "values": values}
            return node  # primitive, possibly with a logicalType
        if not isinstance(node, str) or node in PRIMITIVES:
            return node
        name = fullname(node, namespace)
        pinned = pins.get(name)
        if name in defined:
            if pinned is not None and defined[name] not in (None, pinned):
                raise SchemaDefinitionError(
                    str(path), f"{name} pinned to v{pinned} but already used at v{defined[name]}"
                )
            return name
        if pinned is None:
            raise SchemaDefinitionError(
                str(path), f"reference {name} is not pinned in {USES_PROPERTY}"
            )
        return self._expand(name, pinned, defined)


def _strip_logical_types(node: Any) -> Any:
    """Return ``node`` with ``logicalType`` annotations removed (values stay raw ints)."""
    if isinstance(node, list):
        return [_strip_logical_types(b) for b in node]
    if not isinstance(node, dict):
        return node
    if "logicalType" in node and node.get("type") in PRIMITIVES:
        return node["type"]
    out = dict(node)
    if "fields" in out:
        out["fields"] = [{**f, "type": _strip_logical_types(f["type"])} for f in out["fields"]]
    for key in ("items", "values"):
        if key in out:
            out[key] = _strip_logical_types(out[key])
    return out
