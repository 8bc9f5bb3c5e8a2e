"""Multi-node servers for the cluster suite, started by this test session and stopped at its end.

- a 3-node Kafka cluster (`deploy/local/kafka_cluster.sh`): combined KRaft broker+controller
  nodes on 127.0.0.1:19092-19094 (controllers 19095-19097), replication factor 3,
  min.insync.replicas 2, 512 MB heaps, the jars of the one-node stack's Maven resolution;
- a 2-shard ClickHouse (`deploy/local/clickhouse_cluster.sh`): two chdb-engine servers on
  HTTP 18123/18124 (native 19000/19001) in the `remote_servers` cluster `candor`.

The chdb engine cannot run ReplicatedMergeTree (no Keeper, no distributed DDL), so this
cluster has one replica per shard and Candor's settings say `replicated = False` with
`shard_urls`: shard-local tables keep their own engines, `Distributed` tables sit over them.
`test_replicated_cluster.py` runs the replicated DDL against a user's own cluster.

Ports can be moved with CANDOR_TEST_KAFKA_CLUSTER_PORT / CANDOR_TEST_CLICKHOUSE_CLUSTER_PORT
(HTTP base; native = it + 877) when another session holds them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from candor.settings import ClickHouseSettings, KafkaSettings, Settings
from tests.cluster.clusters import (
    CLUSTER,
    NODES,
    SCRIPTS,
    SHARDS,
    ClickHouseCluster,
    KafkaCluster,
    base_env,
)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    home = tmp_path_factory.mktemp("kafka-cluster")
    port = int(os.environ.get("CANDOR_TEST_KAFKA_CLUSTER_PORT", "19092"))
    env = {
        **base_env(home),
        "CANDOR_KAFKA_NODES": str(NODES),
        "CANDOR_KAFKA_CLUSTER_PORT": str(port),
        "CANDOR_KAFKA_HEAP": "512m",
    }
    cluster = KafkaCluster("kafka_cluster.sh", home, env)
    try:
        cluster.run("start")
        cluster.bootstrap = cluster.run("bootstrap")
        yield cluster
    finally:
        subprocess.run(
            ["bash", str(SCRIPTS / "kafka_cluster.sh"), "stop"],
            env=env,
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="session")
def clickhouse_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseCluster]:
    home = tmp_path_factory.mktemp("clickhouse-cluster")
    http = int(os.environ.get("CANDOR_TEST_CLICKHOUSE_CLUSTER_PORT", "18123"))
    env = {
        **base_env(home),
        "CANDOR_CLICKHOUSE_SHARD_COUNT": str(SHARDS),
        "CANDOR_CLICKHOUSE_CLUSTER": CLUSTER,
        "CANDOR_CLICKHOUSE_CLUSTER_HTTP_PORT": str(http),
        "CANDOR_CLICKHOUSE_CLUSTER_TCP_PORT": str(http + 877),
    }
    cluster = ClickHouseCluster("clickhouse_cluster.sh", home, env)
    try:
        cluster.run("start")
        cluster.urls = tuple(cluster.run("urls").split(","))
        yield cluster
    finally:
        subprocess.run(
            ["bash", str(SCRIPTS / "clickhouse_cluster.sh"), "stop"],
            env=env,
            capture_output=True,
            check=False,
        )


@pytest.fixture
def cluster_settings(
    kafka_cluster: KafkaCluster, clickhouse_cluster: ClickHouseCluster, unique: str, tmp_path: Path
) -> Settings:
    """Settings of a private pipeline on both clusters: its own topic prefix and database."""
    return Settings(
        home=tmp_path / "home",
        kafka=KafkaSettings(
            bootstrap=kafka_cluster.bootstrap,
            partitions=12,
            replication_factor=3,
            topic_prefix=f"cl-{unique}.",
        ),
        clickhouse=ClickHouseSettings(
            url=clickhouse_cluster.urls[0],
            cluster=CLUSTER,
            replicated=False,
            shard_urls=list(clickhouse_cluster.urls),
            database=f"candor_cl_{unique}",
        ),
    )
