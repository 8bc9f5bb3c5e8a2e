"""The replicated DDL against a real replicated ClickHouse cluster, when one is given.

This machine cannot run it: the chdb engine of the local stack has no Keeper, refuses
ON CLUSTER ("Replicated DDL queries are disabled") and cannot run ReplicatedMergeTree.
Point it at your own cluster (the Altinity example of deploy/k8s/operators, or the
compose file's one-node Keeper cluster):

    CANDOR_CLICKHOUSE_CLUSTER_URL=http://clickhouse:8123 CANDOR_CLICKHOUSE_CLUSTER_NAME=candor \\
    [CANDOR_CLICKHOUSE_CLUSTER_USER=... CANDOR_CLICKHOUSE_CLUSTER_PASSWORD=...] \\
    .venv/bin/python -m pytest tests/cluster/test_replicated_cluster.py

It creates and drops its own database (ON CLUSTER) and needs nothing else.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from backends.clickhouse.connection import connect
from candor.settings import ClickHouseSettings, Settings
from sinks.migrate import migrate
from sinks.rows import EVENT_COLUMNS, event_row
from sinks.writer import TableWriter
from tests.unit.sinks.sinks_samples import event

URL = os.environ.get("CANDOR_CLICKHOUSE_CLUSTER_URL", "")
pytestmark = pytest.mark.skipif(
    not URL,
    reason="no replicated ClickHouse cluster: the chdb engine here cannot run "
    "ReplicatedMergeTree or ON CLUSTER; set CANDOR_CLICKHOUSE_CLUSTER_URL (and "
    "CANDOR_CLICKHOUSE_CLUSTER_NAME) to run this against your own cluster",
)


@pytest.fixture
def replicated(unique: str) -> Iterator[Settings]:
    s = Settings(
        clickhouse=ClickHouseSettings(
            url=URL,
            cluster=os.environ.get("CANDOR_CLICKHOUSE_CLUSTER_NAME", "candor"),
            user=os.environ.get("CANDOR_CLICKHOUSE_CLUSTER_USER", "default"),
            password=SecretStr(os.environ.get("CANDOR_CLICKHOUSE_CLUSTER_PASSWORD", "")),
            database=f"candor_rep_{unique}",
        )
    )
    yield s
    client = connect(s, database="")
    for db in (s.clickhouse.database, f"analyst_{s.clickhouse.database}"):
        client.command(f"DROP DATABASE IF EXISTS {db} ON CLUSTER {s.clickhouse.cluster} SYNC")


def test_replicated_tables_on_every_replica_and_a_replay_lands_once(replicated: Settings) -> None:
    s = replicated
    assert migrate(s)
    ch = connect(s)
    cluster = s.clickhouse.cluster
    replicas = ch.query(
        f"SELECT count() FROM system.clusters WHERE cluster = '{cluster}'"
    ).result_rows[0][0]
    engines = ch.query(
        f"SELECT engine, count() FROM clusterAllReplicas({cluster}, system.tables) "
        f"WHERE database = '{s.clickhouse.database}' AND name IN ('events', 'events_local') "
        "GROUP BY engine"
    ).result_rows
    assert {str(r[0]): int(r[1]) for r in engines} == {
        "Distributed": replicas,
        "ReplicatedReplacingMergeTree": replicas,
    }

    now = time.time_ns() // 1000
    rows = [event_row(event(subject=f"subject-{i % 40}", seq=i, ts=now - i)) for i in range(300)]
    writer = TableWriter(ch, "events", EVENT_COLUMNS)
    writer.write(rows, "capture.clean:0:0-299")
    writer.write(rows, "capture.clean:0:0-299")  # the sink's replay after a crash
    ch.command(f"SYSTEM SYNC REPLICA ON CLUSTER {cluster} {s.clickhouse.database}.events_local")
    assert int(ch.query("SELECT count() FROM events").result_rows[0][0]) == 300
