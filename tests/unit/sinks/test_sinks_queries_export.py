"""The query pack's files and printing; export request checks and trajectory grouping."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sinks.export import (
    InvalidExportRange,
    OutputDirNotEmpty,
    UnknownFormat,
    check_request,
    group_trajectories,
)
from sinks.queries import UnknownQuery, format_table, get_query, list_queries, parse_params
from tests.unit.sinks.sinks_samples import TS, action


def test_every_query_documents_what_it_answers_and_binds_typed_parameters() -> None:
    queries = list_queries()
    assert len(queries) >= 5
    for q in queries:
        assert q.answers, q.name
        assert q.parameters, q.name
        for name in q.parameters:
            assert f"{{{name}:" in q.sql
    assert get_query("commands_run").parameters == {
        "org_id": "String",
        "day_from": "Date",
        "day_to": "Date",
        "top": "UInt32",
    }


@pytest.mark.parametrize("name", ["nope", "../migrations/0001_tables", ""])
def test_unknown_query_names_are_refused(name: str) -> None:
    with pytest.raises(UnknownQuery):
        get_query(name)


def test_params_and_table_printing() -> None:
    assert parse_params(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ValueError):
        parse_params(["novalue"])
    assert format_table(["app", "hours"], [("code", 1.5), ("terminal", None)]).splitlines() == [
        "app       hours",
        "--------  -----",
        "code      1.5",
        "terminal",
        "(2 rows)",
    ]


@pytest.mark.parametrize(
    ("start", "end", "fmt", "error"),
    [
        (TS, TS, "parquet", InvalidExportRange),
        (TS + 1, TS, "parquet", InvalidExportRange),
        ("yesterday", TS, "parquet", InvalidExportRange),
        (TS, TS + 1, "csv", UnknownFormat),
    ],
)
def test_malformed_requests_are_refused(
    tmp_path: Path, start: Any, end: Any, fmt: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_request(start, end, tmp_path / "new", fmt)


def test_an_existing_non_empty_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "old.parquet").write_text("x")
    with pytest.raises(OutputDirNotEmpty):
        check_request(TS, TS + 1, tmp_path, "parquet")
    assert check_request(
        datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2), tmp_path / "e", "jsonl"
    ) == (1_735_689_600_000_000, 1_735_776_000_000_000)


def _row(a: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    out["path"] = [(p["dt_ms"], p["x"], p["y"]) for p in a["path"]]
    return out


def test_actions_group_into_ordered_trajectories_of_consented_subjects() -> None:
    rows = [
        _row(a)
        for a in (
            action("typing", subject="a", start=TS, session="a:d1:1", n=1),
            action("drag", subject="a", start=TS + 5, session="a:d1:1", n=2),
            action("click", subject="a", start=TS + 9, session=None, n=3),
            action("typing", subject="b", start=TS, session="b:d1:1", n=4),
            action("scroll", subject="z", start=TS, session="z:d1:1", n=5),
        )
    ]
    out = list(group_trajectories(iter(rows), {"a": 4, "b": 1}))
    assert [(t["trajectory_id"], [s["kind"] for s in t["actions"]]) for t in out] == [
        ("a:d1:1", ["typing", "drag"]),
        (f"a:d1:day-{TS // 86_400_000_000}", ["click"]),
        ("b:d1:1", ["typing"]),
    ]
    assert out[0]["consent_version"] == 4
    assert out[0]["actions"][1]["path"] == [{"dt_ms": 0, "x": 1, "y": 2}]
