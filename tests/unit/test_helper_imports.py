"""One way to import test helpers: from a helper module (tests/harness.py,
tests/integration/producers/broker.py, ...), never from a conftest module or a
test module, and never by putting a directory on `sys.path`.

A conftest module is pytest's: it loads it itself, so importing it again by name
can run it twice under two names, and its fixtures are reached by argument
name, not by import. A test module is collected for its tests; importing one
from another runs the first one's module-level code (and marks) a second time.

Every Python file of the repository is read with `ast` (nothing is executed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("tests", "bench", "candor", "producers", "streams", "sinks", "privacy", "backends")


def _forbidden(module: str) -> bool:
    """Whether ``module`` (dotted, relative ones with leading dots) is one of
    this repository's conftest or test modules; other libraries' (e.g.
    ``aiohttp.test_utils``) are theirs to name."""
    parts = module.split(".")
    ours = module.startswith(".") or parts[0] in ROOTS
    return ours and any(p == "conftest" or p.startswith("test_") for p in parts if p)


def violations(path: Path, source: str) -> list[str]:
    """Messages for every import of a conftest or test module in ``source``, and
    every change to ``sys.path`` in a test."""
    rel = path.relative_to(REPO)
    out = []
    for node in ast.walk(ast.parse(source, str(rel))):
        if not isinstance(node, ast.stmt | ast.expr):
            continue
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            modules = [base]
            # `from tests.unit import conftest`, `from . import test_x`
            modules += [f"{base}.{alias.name}" for alias in node.names]
        for module in modules:
            if _forbidden(module):
                out.append(
                    f"{rel}:{node.lineno}: imports `{module}`: put what it needs in a "
                    "helper module beside it and import that (fixtures stay in conftest.py)"
                )
                break
        if (
            rel.parts[0] == "tests"
            and isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "path"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "sys"
            and node.attr in ("insert", "append", "extend")
        ):
            out.append(
                f"{rel}:{node.lineno}: changes sys.path: tests import the repository's "
                "packages as installed and test helpers as `tests.` modules"
            )
    return out


def python_files() -> list[Path]:
    return [
        path
        for root in ROOTS
        for path in sorted((REPO / root).rglob("*.py"))
        if "vendor" not in path.parts
    ]


def test_every_root_is_read() -> None:
    found = {path.relative_to(REPO).parts[0] for path in python_files()}
    assert found == set(ROOTS), f"roots without modules: {set(ROOTS) - found}"
    assert REPO / "tests" / "conftest.py" in python_files()


def test_no_module_imports_a_conftest_or_a_test_module() -> None:
    problems = [msg for path in python_files() for msg in violations(path, path.read_text())]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "from tests.integration.producers.conftest import read_topic\n",
        "import tests.conftest\n",
        "from tests.unit import conftest\n",
        "from .conftest import MASTER\n",
        "def f():\n    from tests.unit.streams.test_streams_router_batches import NOW\n",
        "from .test_agent_x11 import display\n",
        "from . import test_agent_x11\n",
        "import sys\nsys.path.insert(0, '/repo')\n",
    ],
)
def test_a_forbidden_import_is_named(source: str) -> None:
    path = REPO / "tests" / "integration" / "example.py"
    [message] = violations(path, source)
    assert message.startswith("tests/integration/example.py:")


@pytest.mark.parametrize(
    "source",
    [
        "from tests.integration.producers.broker import read_topic\n",
        "from tests.harness import REPO, free_port\n",
        "from tests.unit.streams.batch_records import NOW, as_batch\n",
        "import pytest\nfrom candor.settings import Settings\n",
        "from tests.unit.network_guard import NetworkAccessInUnitTest\n",
        "from aiohttp.test_utils import TestClient\n",
    ],
)
def test_helper_modules_pass(source: str) -> None:
    assert violations(REPO / "tests" / "example.py", source) == []
