"""Imports run one way: `candor/` -> {`producers/`, `streams/`, `sinks/`} ->
`backends/` -> `privacy/` -> `schemas/` (docs/architecture.md).

Every module of every package is read with `ast` (no import is executed), and
each `import`/`from ... import` of another Candor package, at any depth of the
module (lazy imports inside functions count too), must point to a lower layer.
Stages never import each other: they talk through Kafka topics and the
contracts in `schemas/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Lower number = higher layer. A package may import its own modules and any
# package of a strictly larger number.
LAYERS: dict[str, int] = {
    "candor": 0,
    "producers": 1,
    "streams": 1,
    "sinks": 1,
    "backends": 2,
    "privacy": 3,
    "schemas": 4,
}
RULE = (
    "candor/ -> {producers, streams, sinks} -> backends/{kafka, clickhouse} -> privacy "
    "-> schemas (docs/architecture.md)"
)


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in ``tree``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(package: str, path: Path, source: str) -> list[str]:
    """Messages for every import of ``path`` (in ``package``) that breaks the rule."""
    rel = path.relative_to(REPO)
    out = []
    for line, module in imported_packages(ast.parse(source, str(rel))):
        target = module.split(".")[0]
        if target not in LAYERS or target == package:
            continue
        if LAYERS[target] <= LAYERS[package]:
            kind = "sideways" if LAYERS[target] == LAYERS[package] else "upward"
            out.append(
                f"{rel}:{line}: `{module}` is a {kind} import "
                f"({package} may not import {target}); rule: {RULE}"
            )
    return out


def modules() -> list[tuple[str, Path]]:
    return [
        (package, path) for package in LAYERS for path in sorted((REPO / package).rglob("*.py"))
    ]


def test_every_package_is_read() -> None:
    found = {package for package, _ in modules()}
    assert found == set(LAYERS), f"packages without modules: {set(LAYERS) - found}"


def test_imports_run_one_way() -> None:
    problems = [
        msg for package, path in modules() for msg in violations(package, path, path.read_text())
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("package", "source", "kind"),
    [
        ("sinks", "from streams.dlq import DeadLetter\n", "sideways"),
        ("streams", "def f():\n    from candor.settings import Settings\n", "upward"),
        ("schemas", "import privacy.consent\n", "upward"),
        ("backends", "from sinks import rows\n", "upward"),
    ],
)
def test_a_bad_import_is_named(package: str, source: str, kind: str) -> None:
    path = REPO / package / "example.py"
    [message] = violations(package, path, source)
    assert message.startswith(f"{package}/example.py:")
    assert f"is a {kind} import" in message and "rule: candor/ ->" in message


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("streams", "from streams.app import build_app\nfrom backends.kafka.lag import LagProbe\n"),
        ("privacy", "from schemas.errors import UnknownPayloadType\n"),
        ("candor", "from sinks.consumer import run_all\nimport faust\n"),
    ],
)
def test_downward_imports_pass(package: str, source: str) -> None:
    assert violations(package, REPO / package / "example.py", source) == []
