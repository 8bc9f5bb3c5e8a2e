"""Optional extras: the core install runs without them, and code that needs one
stops with `MissingExtra` naming the extra to install (`pip install 'candor[...]'`).

A missing module is simulated with ``sys.modules[name] = None`` (Python's own way
to make an import fail with ModuleNotFoundError); nothing is uninstalled and
nothing is fetched.
"""

from __future__ import annotations

import importlib
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.extras import MissingExtra

REPO = Path(__file__).resolve().parents[3]


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make ``modules`` (and their submodules already loaded) unimportable."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def _fresh_import(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Import ``module`` again from its source (its loaded copy is restored after)."""
    monkeypatch.delitem(sys.modules, module, raising=False)
    importlib.import_module(module)


def test_the_error_names_the_extra_and_the_module() -> None:
    err = MissingExtra.of(ModuleNotFoundError("no", name="pyarrow"), "export", "the export")
    assert isinstance(err, ImportError)
    assert (err.module, err.extra, err.needed_by, err.name) == (
        "pyarrow",
        "export",
        "the export",
        "pyarrow",
    )
    assert str(err) == (
        "the export needs the Python module 'pyarrow', which is not installed: "
        "pip install 'candor[export]'"
    )


@pytest.mark.parametrize(
    ("module", "hidden", "extra"),
    [
        ("sinks.export", "pyarrow", "export"),
        ("sinks.export_frames", "pyarrow", "export"),
        ("candor.portal.download", "pyarrow", "export"),
        ("producers.agent.x11", "Xlib", "agent"),
        ("producers.agent.x11_frames", "mss", "agent"),
        ("producers.agent.x11_frames", "Xlib", "agent"),
    ],
)
def test_a_module_that_needs_an_extra_names_it(
    monkeypatch: pytest.MonkeyPatch, module: str, hidden: str, extra: str
) -> None:
    _hide(monkeypatch, hidden)
    with pytest.raises(MissingExtra) as raised:
        _fresh_import(monkeypatch, module)
    assert raised.value.extra == extra and raised.value.module == hidden
    assert f"pip install 'candor[{extra}]'" in str(raised.value)


def test_the_agents_input_listeners_name_the_agent_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from producers.agent.x11 import InputListeners

    _hide(monkeypatch, "pynput")
    with pytest.raises(MissingExtra, match=r"pip install 'candor\[agent\]'"):
        InputListeners(lambda event: None)


def test_reading_the_computer_use_export_names_the_export_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from candor.demo_frames import save_step_images

    _hide(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtra, match=r"pip install 'candor\[export\]'"):
        save_step_images([tmp_path / "shard.parquet"], tmp_path / "out")


def test_the_local_stacks_clickhouse_names_the_local_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _hide(monkeypatch, "chdb")
    with pytest.raises(MissingExtra) as raised:
        runpy.run_path(str(REPO / "deploy" / "local" / "clickhouse_server.py"), run_name="probe")
    assert raised.value.extra == "local" and raised.value.module == "chdb"
    assert "pip install 'candor[local]'" in str(raised.value)


# What the core install runs: the CLI and the services' entry modules.
CORE = (
    "candor.cli",
    "candor.sinks_cli",
    "candor.portal.cli",
    "candor.agent_cli",
    "producers.gateway.server",
    "producers.sdk.client",
    "streams.app",
    "sinks.consumer",
)
EXTRAS = ("pyarrow", "pynput", "Xlib", "mss", "chdb")


def test_the_core_imports_and_its_cli_starts_without_any_extra() -> None:
    """In a fresh interpreter where no extra's module can be imported."""
    program = f"""
import sys
for name in {EXTRAS!r}:
    sys.modules[name] = None
import importlib
for module in {CORE!r}:
    importlib.import_module(module)
from candor.cli import main
try:
    main(["--help"])
except SystemExit as end:
    sys.exit(end.code)
"""
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "usage: candor" in done.stdout
