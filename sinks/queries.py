"""The analyst query pack: `sinks/queries/<name>.sql`, listed, run with parameters, printed.

Each file starts with ``-- Answers: ...`` and ``-- Parameters: ...`` comment
lines; parameters use ClickHouse's server-side syntax ``{name:Type}``, so
values are bound by the server, never pasted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from sinks.settings import SinkSettings

QUERIES_DIR = Path(__file__).resolve().parent / "queries"
_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*):([A-Za-z0-9_(), ]+)\}")


class UnknownQuery(KeyError):
    """No query of that name in the pack."""


class MissingParameters(ValueError):
    """A query was run without some of its parameters."""

    def __init__(self, query: str, missing: Sequence[str]) -> None:
        super().__init__(f"query {query} needs --param for: {', '.join(missing)}")
        self.missing = list(missing)


@dataclass(frozen=True)
class Query:
    """One query of the pack."""

    name: str
    answers: str
    parameters: dict[str, str]  # name -> ClickHouse type, in order of first use
    sql: str


def load_query(path: Path) -> Query:
    """Read one query file. Pure apart from reading ``path``."""
    sql = path.read_text()
    answers = ""
    for line in sql.splitlines():
        if line.startswith("-- Answers:"):
            answers = line.removeprefix("-- Answers:").strip()
    params: dict[str, str] = {}
    for name, kind in _PARAM.findall(sql):
        params.setdefault(name, kind)
    return Query(path.stem, answers, params, sql)


def list_queries(directory: Path = QUERIES_DIR) -> list[Query]:
    """All queries of the pack, by name."""
    return [load_query(p) for p in sorted(directory.glob("*.sql"))]


def get_query(name: str, directory: Path = QUERIES_DIR) -> Query:
    """The query ``name``; raises `UnknownQuery` listing the known names."""
    path = directory / f"{name}.sql"
    if not re.fullmatch(r"[a-z0-9_]+", name) or not path.exists():
        known = ", ".join(q.name for q in list_queries(directory))
        raise UnknownQuery(f"no query {name!r}; known: {known}")
    return load_query(path)


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{k: v}``; raises `ValueError` for an item without ``=``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects k=v, got {pair!r}")
        out[key.strip()] = value
    return out


def run_query(
    settings: SinkSettings, name: str, params: Mapping[str, str], client: Client | None = None
) -> tuple[list[str], list[Sequence[Any]]]:
    """Run query ``name`` with ``params`` (strings, converted by the server).

    Returns ``(column names, rows)``. Raises `UnknownQuery`, `MissingParameters`,
    or the driver's error. Blocks on ClickHouse.
    """
    from backends.clickhouse.connection import connect

    query = get_query(name)
    missing = [p for p in query.parameters if p not in params]
    if missing:
        raise MissingParameters(name, missing)
    client = client or connect(settings)
    bound = {k: params[k] for k in query.parameters}
    result = client.query(query.sql, parameters=bound)
    columns = list(result.column_names)
    if not columns:  # an empty result carries no header: ask the server for it
        body = "\n".join(line for line in query.sql.splitlines() if not line.startswith("--"))
        described = client.query(f"DESCRIBE TABLE ({body})", parameters=bound)
        columns = [str(r[0]) for r in described.result_rows]
    return columns, [tuple(r) for r in result.result_rows]


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: header, rule, one line per row, columns padded. Pure."""
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"({len(rows)} rows)")
    return "\n".join(lines)
