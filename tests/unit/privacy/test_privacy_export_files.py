"""Export files: 0600 in a 0700 directory, never through a symlink, and no
second writer between the emptiness check and the writes.

The export runs for real on disk; ClickHouse is played by a recorded answer
(a unit test opens no socket)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from candor.settings import Settings
from sinks.export import OutputDirNotEmpty, UnsafeOutputDir, export
from sinks.rows import ACTION_COLUMNS
from tests.unit.sinks.sinks_samples import TS, action


class _Answer:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.result_rows = rows


class _Stream:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def __enter__(self) -> _Stream:
        return self

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)

    def __exit__(self, *exc: object) -> None:
        return None


class RecordedClickHouse:
    """One consenting subject with one typing action; inserts are kept."""

    def __init__(self, on_query: Callable[[], None] = lambda: None) -> None:
        self.inserted: list[str] = []
        self._on_query = on_query

    def query(self, sql: str, parameters: Any = None) -> _Answer:
        self._on_query()
        return _Answer([("a", 3)])

    def query_rows_stream(self, sql: str, parameters: Any = None) -> _Stream:
        a = action("typing", subject="a", start=TS, session="a:d1:1", n=1)
        a["path"] = [(p["dt_ms"], p["x"], p["y"]) for p in a["path"]]
        return _Stream([tuple(a.get(c) for c in ACTION_COLUMNS)])

    def insert(self, table: str, *args: Any, **kwargs: Any) -> None:
        self.inserted.append(table)


def _export(out: Path, client: RecordedClickHouse, fmt: str = "jsonl") -> Any:
    return export(Settings(), TS - 10**9, TS + 10**9, out, fmt=fmt, client=client)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_files_are_0600_in_a_0700_directory(tmp_path: Path, fmt: str) -> None:
    old = os.umask(0o022)
    try:
        result = _export(tmp_path / "ds", RecordedClickHouse(), fmt)
    finally:
        os.umask(old)
    assert result.trajectories == 1
    assert stat.S_IMODE((tmp_path / "ds").stat().st_mode) == 0o700
    names = sorted(p.name for p in (tmp_path / "ds").iterdir())
    assert names == ["manifest.json", f"part-00000.{fmt}"]  # the claim is gone
    for name in names:
        assert stat.S_IMODE((tmp_path / "ds" / name).stat().st_mode) == 0o600, name


def test_an_existing_empty_directory_is_made_private(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir(mode=0o755)
    _export(out, RecordedClickHouse())
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_a_symlinked_output_directory_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "ds").symlink_to(target)
    client = RecordedClickHouse()
    with pytest.raises(UnsafeOutputDir):
        _export(tmp_path / "ds", client)
    assert list(target.iterdir()) == [] and client.inserted == []


def test_a_writer_appearing_after_the_check_stops_the_export(tmp_path: Path) -> None:
    """Another process fills the directory between the emptiness check and the
    first write: the export refuses instead of mixing its files with theirs."""
    out = tmp_path / "ds"

    def intruder() -> None:
        out.mkdir(exist_ok=True)
        (out / "part-00000.jsonl").touch()

    client = RecordedClickHouse(on_query=intruder)
    with pytest.raises(OutputDirNotEmpty):
        _export(out, client)
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.jsonl"]
    assert (out / "part-00000.jsonl").read_bytes() == b"" and client.inserted == []


def test_two_exports_into_one_directory_one_is_refused(tmp_path: Path) -> None:
    """A second export starts (and finishes) while the first is between its
    check and its writes: the first is refused, the second's files stand."""
    out = tmp_path / "ds"
    second_error: list[Exception] = []

    def race() -> None:
        if not second_error:
            try:
                _export(out, RecordedClickHouse())
            except OutputDirNotEmpty as err:
                second_error.append(err)

    first = RecordedClickHouse(on_query=race)
    with pytest.raises(OutputDirNotEmpty):
        _export(out, first)
    assert second_error == []
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "part-00000.jsonl"]


def test_a_symlink_planted_as_a_shard_name_is_not_followed(tmp_path: Path) -> None:
    """Were a shard name a symlink (planted before the claim), the exclusive
    create refuses it: nothing is written through it."""
    out = tmp_path / "ds"
    victim = tmp_path / "victim"
    victim.write_text("keep")

    def plant() -> None:
        out.mkdir(exist_ok=True)
        if not (out / "part-00000.jsonl").is_symlink():
            (out / "part-00000.jsonl").symlink_to(victim)

    with pytest.raises(OutputDirNotEmpty):
        _export(out, RecordedClickHouse(on_query=plant))
    assert victim.read_text() == "keep"
