"""Generate kubeconform's JSON schemas for Kubernetes' built-in kinds from the API's
OpenAPI (swagger 2.0) document, offline.

The document is `api/openapi-spec/swagger.json` of the Go module `k8s.io/kubernetes`
(fetched through the Go module proxy by deploy/local/manifest_tools.sh). Each kind
(`x-kubernetes-group-version-kind`) gets one standalone, strict file named as
kubeconform's default template expects, `<kind><-group>-<version>.json` in lower case
(`deployment-apps-v1.json`, `service-v1.json`, `networkpolicy-networking-v1.json`):
the kind's definition plus every definition it reaches, with `additionalProperties:
false` on objects that list their properties (what `-strict` relies on), and the
API's string-or-number types (`IntOrString`, `Quantity`) accepting both.

Run: python k8s_schemas.py SWAGGER_JSON OUT_DIR   (prints how many files it wrote)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BOTH = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "oneOf": [{"type": "string"}, {"type": "integer"}]
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "oneOf": [{"type": "string"}, {"type": "number"}]
    },
}


def _strict(node: Any) -> Any:
    """A copy of ``node`` with ``additionalProperties: false`` on objects listing properties."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref.removeprefix("#/definitions/"))
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def _reachable(name: str, definitions: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in definitions:
            continue
        seen.add(current)
        found: set[str] = set()
        _refs(definitions[current], found)
        todo.extend(found - seen)
    return seen


def file_name(group: str, version: str, kind: str) -> str:
    """kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json` for this kind."""
    first = group.split(".")[0].lower()
    return f"{kind.lower()}{'-' + first if first else ''}-{version.lower()}.json"


def generate(swagger: dict[str, Any], out: Path) -> int:
    """Write one schema per kind into ``out``; return how many."""
    definitions = {**swagger["definitions"], **BOTH}
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for name, definition in swagger["definitions"].items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            needed = _reachable(name, definitions)
            schema = {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "$ref": f"#/definitions/{name}",
                "definitions": {n: _strict(definitions[n]) for n in sorted(needed)},
            }
            path = out / file_name(gvk.get("group", ""), gvk["version"], gvk["kind"])
            path.write_text(json.dumps(schema, separators=(",", ":")))
            written += 1
    return written


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    swagger = json.loads(Path(sys.argv[1]).read_text())
    print(generate(swagger, Path(sys.argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
