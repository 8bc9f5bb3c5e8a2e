"""Migration rendering: single node and cluster variants, planning."""

from __future__ import annotations

from pathlib import Path

import pytest

from candor.settings import Settings, replace
from sinks.migrate import (
    MigrationChanged,
    MigrationFileError,
    load_migrations,
    plan,
    render,
    render_steps,
)


def _settings(cluster: str | None = None) -> Settings:
    return replace(
        Settings(),
        clickhouse={"database": "cdb", "cluster": cluster},
        retention={"clickhouse_events_days": 33, "dlq_hours": 77},
    )


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


@pytest.mark.parametrize(
    ("table", "engine", "shard"),
    [
        (
            "events",
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cdb/events_local', "
            "'{replica}')",
            "cityHash64(subject_id)",
        ),
        (
            "sessions",
            "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cdb/sessions_local', "
            "'{replica}', end_ts)",
            "cityHash64(subject_id)",
        ),
        ("activity_minutes", "ReplicatedSummingMergeTree(", "cityHash64(subject_id)"),
        (
            "dead_letters",
            "ReplicatedReplacingMergeTree(",
            "cityHash64(original_topic, original_partition, original_offset, reason)",
        ),
        ("audit_log", "ReplicatedMergeTree(", "cityHash64(action, subject, at)"),
    ],
)
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
    assert len(views) == sum(m.template.count("CREATE VIEW") for m in load_migrations())
    assert all("ON CLUSTER main" in v.splitlines()[0] and "_local" not in v for v in views)


def test_plan_skips_applied_and_refuses_an_edited_migration() -> None:
    migrations = load_migrations()
    first = migrations[0]
    assert plan(_settings(), {}) == migrations
    assert plan(_settings(), {first.version: first.checksum}) == migrations[1:]
    with pytest.raises(MigrationChanged):
        plan(_settings(), {first.version: "0" * 64})


def test_bad_identifiers_and_file_names_are_refused(tmp_path: Path) -> None:
    s = replace(_settings(), clickhouse={"database": "x; DROP"})
    with pytest.raises(Exception, match="identifier"):
        render("CREATE TABLE IF NOT EXISTS {db}.t (a UInt8) ENGINE = MergeTree ORDER BY a", s)
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationFileError):
        load_migrations(tmp_path)


def test_cluster_without_replication_keeps_engines_and_dedup_window_on_local_tables() -> None:
    s = replace(_settings("main"), clickhouse={"replicated": False})
    sql = _all(s)
    assert not any("Replicated" in st for st in sql)
    local = next(st for st in sql if st.startswith("CREATE TABLE IF NOT EXISTS cdb.events_local "))
    assert "ENGINE = ReplacingMergeTree" in local
    assert "non_replicated_deduplication_window = 1000" in local
    dist = next(st for st in sql if st.startswith("CREATE TABLE IF NOT EXISTS cdb.events "))
    assert "ENGINE = Distributed(main, cdb, events_local, cityHash64(subject_id))" in dist


def test_shard_urls_render_without_on_cluster_for_servers_without_distributed_ddl() -> None:
    s = replace(
        _settings("main"),
        clickhouse={
            "replicated": False,
            "shard_urls": ["http://127.0.0.1:18123", "http://127.0.0.1:18124"],
        },
    )
    sql = _all(s)
    assert not any("ON CLUSTER" in st for st in sql)
    assert any("ENGINE = Distributed(main, cdb, sessions_local" in st for st in sql)
    views = [st for st in sql if st.startswith("CREATE VIEW")]
    assert views and all("_local" not in v for v in views)


def test_every_table_the_sinks_write_has_a_deterministic_shard_key() -> None:
    """A replayed batch must reach the shard that took it first, or its dedup token misses."""
    sql = _all(_settings("main"))
    for table in (
        "events",
        "sessions",
        "activity_minutes",
        "actions",
        "consent_ledger",
        "dead_letters",
    ):
        dist = next(st for st in sql if st.startswith(f"CREATE TABLE IF NOT EXISTS cdb.{table} "))
        assert "rand()" not in dist, table


def test_ddl_belongs_on_every_server_and_a_backfill_runs_once() -> None:
    s = replace(_settings("main"), clickhouse={"shard_urls": ["http://a:8123", "http://b:8123"]})
    template = (
        "CREATE TABLE IF NOT EXISTS {db}.t {on_cluster} (a UInt8)\n"
        "ENGINE = MergeTree\nORDER BY a;\n"
        "INSERT INTO {db}.t SELECT 1;\n"
        "DROP TABLE IF EXISTS {db}.old {on_cluster};\n"
    )
    steps = render_steps(template, s)
    assert [everywhere for _, everywhere in steps] == [True, True, False, True]
    assert steps[2][0] == "INSERT INTO cdb.t SELECT 1"
