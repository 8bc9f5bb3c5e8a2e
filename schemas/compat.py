"""Can a reader schema read what a writer schema wrote? (Avro schema resolution rules.)

`check_compatibility` walks a writer and a reader schema (self-contained JSON,
e.g. `SchemaVersion.expanded`) side by side and lists every place where Avro
resolution would fail: a reader field with no default that the writer lacks, a
writer enum symbol the reader does not know, a type change that is not a
promotion, a union branch with no counterpart. An empty list means every datum
the writer can produce is readable. `check_registry` applies it to every
released version of every record against its current version: the rule that
makes "never edit a released file, add a version" safe.

Pure; reads no files and never raises for well-formed schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.canonical import NAMED_TYPES, PRIMITIVES, fullname
from schemas.registry import Registry

# Writer type -> reader types it may be read as (besides itself).
_PROMOTIONS: Mapping[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


@dataclass(frozen=True)
class Incompatibility:
    """One reason a reader cannot read a writer: where (dotted path) and why."""

    path: str
    problem: str

    def __str__(self) -> str:
        """Render as ``path: problem``."""
        return f"{self.path or '<root>'}: {self.problem}"


def check_compatibility(reader: Any, writer: Any) -> list[Incompatibility]:
    """Return every incompatibility of ``reader`` reading data written with ``writer``.

    Both are self-contained JSON schemas. An empty list means compatible.
    """
    return _Walk(reader, writer).run()


def check_registry(registry: Registry) -> dict[tuple[str, int], list[Incompatibility]]:
    """Check each older version of each record against its current version.

    Returns ``{(fullname, version): problems}`` for the versions that the
    current reader cannot read; an empty dict means the registry is sound.
    """
    failures: dict[tuple[str, int], list[Incompatibility]] = {}
    for name in registry.names():
        current = registry.latest(name)
        for version in registry.versions(name):
            problems = check_compatibility(current.expanded, version.expanded)
            if problems:
                failures[(name, version.version)] = problems
    return failures


class _Side:
    """Resolves named references of one schema to their definitions."""

    def __init__(self, schema: Any) -> None:
        self.named: dict[str, Mapping[str, Any]] = {}
        self._collect(schema, "")

    def _collect(self, node: Any, namespace: str) -> None:
        if isinstance(node, list):
            for branch in node:
                self._collect(branch, namespace)
        elif isinstance(node, Mapping):
            kind = node.get("type")
            if kind in NAMED_TYPES:
                full = _fullname_of(node, namespace)
                self.named[full] = {**node, "name": full}
                inner = full.rpartition(".")[0]
                for fld in node.get("fields", ()):
                    self._collect(fld["type"], inner)
            elif kind == "array":
                self._collect(node["items"], namespace)
            elif kind == "map":
                self._collect(node["values"], namespace)
            elif isinstance(kind, list | Mapping):
                self._collect(kind, namespace)

    def resolve(self, node: Any, namespace: str) -> tuple[Any, str]:
        """Return (definition or primitive name or union list, namespace inside it)."""
        if isinstance(node, str):
            if node in PRIMITIVES:
                return node, namespace
            full = fullname(node, namespace)
            return self.named.get(full, full), full.rpartition(".")[0]
        if isinstance(node, Mapping):
            kind = node.get("type")
            if kind in NAMED_TYPES:
                full = _fullname_of(node, namespace)
                return self.named[full], full.rpartition(".")[0]
            if kind in ("array", "map"):
                return node, namespace
            return self.resolve(kind, namespace)
        return node, namespace


class _Walk:
    def __init__(self, reader: Any, writer: Any) -> None:
        self._reader_schema, self._writer_schema = reader, writer
        self._r, self._w = _Side(reader), _Side(writer)
        self._seen: set[tuple[str, str]] = set()
        self.problems: list[Incompatibility] = []

    def run(self) -> list[Incompatibility]:
        self._check(self._reader_schema, "", self._writer_schema, "", "")
        return self.problems

    def _fail(self, path: str, problem: str) -> None:
        self.problems.append(Incompatibility(path, problem))

    def _check(self, r_node: Any, r_ns: str, w_node: Any, w_ns: str, path: str) -> None:
        r, r_ns = self._r.resolve(r_node, r_ns)
        w, w_ns = self._w.resolve(w_node, w_ns)
        if isinstance(w, list):
            # Every branch the writer may pick must be readable.
            for branch in w:
                self._check(r, r_ns, branch, w_ns, path)
            return
        if isinstance(r, list):
            if not any(self._quiet(branch, r_ns, w, w_ns) for branch in r):
                self._fail(path, f"writer type {_describe(w)} matches no reader union branch")
            return
        self._match(r, r_ns, w, w_ns, path)

    def _quiet(self, r: Any, r_ns: str, w: Any, w_ns: str) -> bool:
        sub = _Walk.__new__(_Walk)
        sub._r, sub._w, sub._seen, sub.problems = self._r, self._w, set(self._seen), []
        sub._check(r, r_ns, w, w_ns, "")
        return not sub.problems

    def _match(self, r: Any, r_ns: str, w: Any, w_ns: str, path: str) -> None:
        r_kind, w_kind = _kind(r), _kind(w)
        if r_kind != w_kind:
            if r_kind not in _PROMOTIONS.get(w_kind, frozenset()):
                self._fail(path, f"writer {_describe(w)} cannot be read as {_describe(r)}")
            return
        if r_kind in PRIMITIVES:
            return
        if r_kind == "array":
            self._check(r["items"], r_ns, w["items"], w_ns, path + "[]")
            return
        if r_kind == "map":
            self._check(r["values"], r_ns, w["values"], w_ns, path + "{}")
            return
        r_name, w_name = r["name"], w["name"]
        aliases = {fullname(a, r_ns) for a in r.get("aliases", ())}
        if r_name != w_name and w_name not in aliases:
            self._fail(path, f"named type {w_name} cannot be read as {r_name}")
            return
        if r_kind == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                self._fail(path, f"writer enum symbols {missing} unknown to the reader")
        elif r_kind == "fixed":
            if r["size"] != w["size"]:
                self._fail(path, f"fixed size {w['size']} read as {r['size']}")
        elif (r_name, w_name) not in self._seen:
            self._seen.add((r_name, w_name))
            self._record(r, w, path)

    def _record(self, r: Mapping[str, Any], w: Mapping[str, Any], path: str) -> None:
        r_ns, w_ns = r["name"].rpartition(".")[0], w["name"].rpartition(".")[0]
        written = {f["name"]: f for f in w["fields"]}
        for fld in r["fields"]:
            names = [fld["name"], *fld.get("aliases", ())]
            source = next((written[n] for n in names if n in written), None)
            sub = f"{path}.{fld['name']}".lstrip(".")
            if source is None:
                if "default" not in fld:
                    self._fail(sub, "reader field has no default and the writer lacks it")
                continue
            self._check(fld["type"], r_ns, source["type"], w_ns, sub)


def _fullname_of(node: Mapping[str, Any], namespace: str) -> str:
    name: str = node["name"]
    return name if "." in name else fullname(name, node.get("namespace", namespace))


def _kind(node: Any) -> str:
    if isinstance(node, str):
        return node if node in PRIMITIVES else f"unresolved {node}"
    kind: str = node["type"]
    return "record" if kind == "error" else kind


def _describe(node: Any) -> str:
    if isinstance(node, Mapping) and "name" in node:
        return f"{node['type']} {node['name']}"
    return _kind(node) if not isinstance(node, list) else "union"
