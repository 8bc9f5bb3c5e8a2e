"""Migration rendering: single node and cluster variants, planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from candor.settings import Settings
from sinks.migrate import (
    MigrationChanged,
    MigrationFileError,
    load_migrations,
    plan,
    render,
)


def _settings(cluster: str | None = None) -> Settings:
    s = Settings()
    s.clickhouse.database = "cdb"
    s.clickhouse.cluster = cluster
    s.retention.clickhouse_events_days = 33
    s.retention.dlq_hours = 77
    return s


def _all(settings: Settings) -> list[str]:
    return [st for m in load_migrations() for st in render(m.template, settings)]


def test_single_node_renders_plain_engines_with_settings_values() -> None:
    sql = _all(_settings())
    text = "\n".join(sql)
    assert "{db}" not in text and "{on_cluster}" not in text and "ON CLUSTER" not in text
    assert "Replicated" not in text and "Distributed" not in text
    events = next(s for s in sql if s.startswith("CREATE TABLE IF NOT EXISTS cdb.events\n"))
    assert "INTERVAL 33 DAY" in events and "non_replicated_deduplication_window = 1000" in events
    assert "INTERVAL 77 HOUR" in next(s for s in sql if "cdb.dead_letters" in s)
    assert not any(line.strip().startswith("--") for s in sql for line in s.splitlines())


@pytest.mark.parametrize(("table", "engine", "shard"), [
    ("events", "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cdb/events_local', "
               "'{replica}')",
     "cityHash64(subject_id)"),
    ("sessions", "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cdb/sessions_local', "
     "'{replica}', end_ts)", "cityHash64(subject_id)"),
    ("activity_minutes", "ReplicatedSummingMergeTree(", "cityHash64(subject_id)"),
    ("dead_letters", "ReplicatedReplacingMergeTree(", "rand()"),
    ("audit_log", "ReplicatedMergeTree(", "rand()"),
])
def test_cluster_renders_replicated_local_tables_and_distributed_ones(
    table: str, engine: str, shard: str
) -> None:
    sql = _all(_settings("main"))
    local = next(s for s in sql if s.startswith(f"CREATE TABLE IF NOT EXISTS cdb.{table}_local "))
    assert "ON CLUSTER main" in local.splitlines()[0]
    assert engine in local
    assert "non_replicated_deduplication_window" not in local
    dist = next(s for s in sql if s.startswith(f"CREATE TABLE IF NOT EXISTS cdb.{table} "))
    assert dist.splitlines()[0].endswith("ON CLUSTER main")
    assert f"ENGINE = Distributed(main, cdb, {table}_local, {shard})" in dist


def test_cluster_views_read_the_distributed_names() -> None:
    views = [s for s in _all(_settings("main")) if s.startswith("CREATE VIEW")]
    assert len(views) == 8
    assert all("ON CLUSTER main" in v.splitlines()[0] and "_local" not in v for v in views)


def test_plan_skips_applied_and_refuses_an_edited_migration() -> None:
    migrations = load_migrations()
    first = migrations[0]
    assert plan(_settings(), {}) == migrations
    assert plan(_settings(), {first.version: first.checksum}) == migrations[1:]
    with pytest.raises(MigrationChanged):
        plan(_settings(), {first.version: "0" * 64})


def test_bad_identifiers_and_file_names_are_refused(tmp_path: Path) -> None:
    s = _settings()
    s.clickhouse.database = "x; DROP"
    with pytest.raises(Exception, match="identifier"):
        render("CREATE TABLE IF NOT EXISTS {db}.t (a UInt8) ENGINE = MergeTree ORDER BY a", s)
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationFileError):
        load_migrations(tmp_path)
