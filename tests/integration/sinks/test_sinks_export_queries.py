"""Training export and analyst queries against real ClickHouse."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from backends.clickhouse.connection import connect
from candor.settings import Settings, replace
from sinks.export import ExportProgress, OutputDirNotEmpty, export
from sinks.migrate import migrate
from sinks.queries import list_queries, run_query
from sinks.rows import (
    ACTION_COLUMNS,
    CONSENT_COLUMNS,
    EVENT_COLUMNS,
    action_row,
    consent_row,
    event_row,
)
from tests.unit.sinks.sinks_samples import action, consent, event

pytestmark = pytest.mark.integration


@pytest.fixture
def db_settings(settings: Settings, unique: str) -> Iterator[Settings]:
    own = replace(settings, clickhouse={"database": f"candor_it_{unique}"})
    migrate(own)
    yield own
    connect(own, database="").command(f"DROP DATABASE IF EXISTS {own.clickhouse.database}")


def test_export_holds_only_consented_not_erased_subjects(
    db_settings: Settings, tmp_path: Path
) -> None:
    client = connect(db_settings)
    now = int(time.time() * 1_000_000)
    client.insert(
        "consent_ledger",
        [
            consent_row(c)
            for c in (
                consent("yes", 1),
                consent("yes", 2),  # consents, current v2
                consent("withdrew", 1),
                consent("withdrew", 2, ["activity_metadata"]),
                consent("never", 1, ["activity_metadata"]),
                consent("erased", 1),
            )
        ],
        column_names=CONSENT_COLUMNS,
    )
    client.insert(
        "audit_log",
        [["dpo", "erase", "erased", "{}"]],
        column_names=["actor", "action", "subject", "detail"],
    )
    acts = []
    for subject in ("yes", "withdrew", "never", "erased"):
        for n, kind in enumerate(("typing", "click", "scroll", "typing")):
            session = f"{subject}:d1:a" if n < 2 else f"{subject}:d1:b"
            acts.append(
                action(
                    kind,
                    subject=subject,
                    start=now - 600_000_000 + n * 2_000_000,
                    session=session,
                    n=n,
                )
            )
    outside = action("typing", subject="yes", start=now - 7_200_000_000, n=99)
    client.insert("actions", [action_row(a) for a in [*acts, outside]], column_names=ACTION_COLUMNS)

    seen: list[ExportProgress] = []
    start = datetime.now(UTC) - timedelta(hours=1)
    result = export(db_settings, start, datetime.now(UTC), tmp_path / "out", progress=seen.append)

    table = pq.read_table(result.shards[0]).to_pylist()
    assert sorted(t["trajectory_id"] for t in table) == ["yes:d1:a", "yes:d1:b"]
    assert {t["subject_id"] for t in table} == {"yes"}
    assert all(t["consent_version"] == 2 for t in table)
    first = next(t for t in table if t["trajectory_id"] == "yes:d1:a")
    assert [a["kind"] for a in first["actions"]] == ["typing", "click"]
    assert first["actions"][0]["observation_ref"].startswith("sha256:")
    assert seen and seen[-1].trajectories == 2 and seen[-1].actions == 4

    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows"] == 2 and manifest["consent"]["policy_versions"] == {"2": 1}
    assert "yes" not in json.dumps(manifest)  # the subject list is not in the manifest
    recorded = client.query("SELECT subjects, total_rows FROM exports").result_rows
    assert recorded == [(["yes"], 2)]

    with pytest.raises(OutputDirNotEmpty):
        export(db_settings, start, datetime.now(UTC), tmp_path / "out")


def test_query_pack_runs_every_query_with_parameters(db_settings: Settings) -> None:
    client = connect(db_settings)
    now = int(time.time() * 1_000_000)
    evs = [
        event("WindowFocus", ts=now),
        event("TerminalCommand", ts=now + 1),
        event("TerminalCommand", ts=now + 2),
    ]
    client.insert("events", [event_row(e) for e in evs], column_names=EVENT_COLUMNS)
    today = datetime.now(UTC).date().isoformat()
    values = {
        "org_id": "org1",
        "day_from": today,
        "day_to": today,
        "top": "10",
        "since": "2000-01-01 00:00:00",
    }
    for query in list_queries():
        columns, rows = run_query(db_settings, query.name, {k: values[k] for k in query.parameters})
        assert columns
        if query.name == "commands_run":
            assert rows == [("git status", 2, 2, 1.0)]
        if query.name == "focus_switches":
            assert rows == [("firefox", "code", 1, 1)]
