"""Candor's tables on a 2-shard ClickHouse: migrations create shard-local tables and
`Distributed` tables under the names queries use, and the sink's exactly-once holds
through them: a replayed batch lands once, also after an insert that failed with one
shard down."""

from __future__ import annotations

import time
from collections.abc import Iterator

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from backends.clickhouse.connection import connect
from candor.settings import Settings
from sinks.migrate import migrate
from sinks.rows import EVENT_COLUMNS, event_row
from sinks.writer import RetryPolicy, TableWriter
from tests.cluster.clusters import ClickHouseCluster
from tests.unit.sinks.sinks_samples import event


def _client(url: str, database: str) -> Client:
    host, port = url.removeprefix("http://").split(":")
    return clickhouse_connect.get_client(
        host=host, port=int(port), database=database, autogenerate_session_id=False
    )


def _count(client: Client, sql: str) -> int:
    return int(client.query(sql).result_rows[0][0])


@pytest.fixture
def sharded(
    cluster_settings: Settings, clickhouse_cluster: ClickHouseCluster
) -> Iterator[tuple[Settings, list[Client]]]:
    s = cluster_settings
    migrate(s)
    shards = [_client(url, s.clickhouse.database) for url in clickhouse_cluster.urls]
    yield s, shards
    for url in clickhouse_cluster.urls:
        c = _client(url, "")
        c.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")
        c.command(f"DROP DATABASE IF EXISTS analyst_{s.clickhouse.database}")


def test_migrations_create_local_and_distributed_tables_on_every_shard(
    sharded: tuple[Settings, list[Client]],
) -> None:
    s, shards = sharded
    for shard in shards:
        engines = {
            str(name): str(engine)
            for name, engine in shard.query(
                "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"
            ).result_rows
        }
        for table in (
            "events",
            "sessions",
            "activity_minutes_by_device",
            "actions",
            "dead_letters",
        ):
            assert engines[table] == "Distributed", table
            assert engines[f"{table}_local"].endswith("MergeTree"), table
        assert engines["activity_minutes"] == "View"  # over the Distributed table (0005)
    # a second run finds everything applied, through the Distributed schema_migrations
    assert migrate(s) == []


def test_a_replayed_batch_lands_once_across_shards_even_after_a_failed_insert(
    sharded: tuple[Settings, list[Client]], clickhouse_cluster: ClickHouseCluster
) -> None:
    s, shards = sharded
    now = time.time_ns() // 1000  # recent: the events table's TTL drops old rows on insert
    rows = [event_row(event(subject=f"subject-{i % 40}", seq=i, ts=now - i)) for i in range(400)]
    writer = TableWriter(
        connect(s), "events", EVENT_COLUMNS, retry=RetryPolicy(initial=0.05, max_attempts=2)
    )
    first, second = rows[:200], rows[200:]

    writer.write(first, "capture.clean:0:0-199")
    writer.write(first, "capture.clean:0:0-199")  # the sink's replay after a crash
    per_shard = [_count(c, "SELECT count() FROM events_local") for c in shards]
    assert sum(per_shard) == 200 and all(n > 0 for n in per_shard), per_shard

    # shard 2 down: the insert fails (whatever shard 1 took of it stays, under its token)
    clickhouse_cluster.stop_shard(2)
    try:
        with pytest.raises(Exception):  # noqa: B017 - the writer's typed or the driver's error
            writer.write(second, "capture.clean:0:200-399")
    finally:
        clickhouse_cluster.start_shard(2)
    shards[1] = _client(clickhouse_cluster.urls[1], s.clickhouse.database)
    assert _count(shards[1], "SELECT count() FROM events_local") == per_shard[1]

    writer.write(second, "capture.clean:0:200-399")  # the replay with the same token
    ch = connect(s)
    assert _count(ch, "SELECT count() FROM events") == 400
    assert _count(ch, "SELECT uniqExact(event_id) FROM events") == 400
    assert sum(_count(c, "SELECT count() FROM events_local") for c in shards) == 400
