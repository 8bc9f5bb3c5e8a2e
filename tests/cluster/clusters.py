"""The multi-node server sets of the cluster suite, each run by a deploy/local script
with its own CANDOR_HOME."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.harness import REPO, kill9_pidfile

SCRIPTS = REPO / "deploy" / "local"


NODES = 3


SHARDS = 2


CLUSTER = "candor"


@dataclass
class Cluster:
    """One multi-node server set run by a deploy/local script with its own CANDOR_HOME."""

    script: str
    home: Path
    env: dict[str, str]

    def run(self, *args: str) -> str:
        """Run the script; return its stdout. Fails the test with its output when it fails."""
        proc = subprocess.run(
            ["bash", str(SCRIPTS / self.script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{self.script} {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
        return proc.stdout.strip()


@dataclass
class KafkaCluster(Cluster):
    bootstrap: str = ""

    def node_pidfile(self, node: int) -> Path:
        return self.home / "kafka-cluster" / f"node-{node}" / "kafka.pid"

    def kill9(self, node: int) -> None:
        """kill -9 one node (no controlled shutdown)."""
        kill9_pidfile(self.node_pidfile(node))

    def start_node(self, node: int) -> None:
        """Start one node again; blocks until it listens."""
        self.run("start-node", str(node))


@dataclass
class ClickHouseCluster(Cluster):
    urls: tuple[str, ...] = ()

    def stop_shard(self, shard: int) -> None:
        self.run("stop-shard", str(shard))

    def start_shard(self, shard: int) -> None:
        self.run("start-shard", str(shard))


def base_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CANDOR_HOME": str(home),
        # the one-node stack's jars: one Maven resolution for every Kafka of this machine
        "CANDOR_KAFKA_LIBS": str(REPO / ".candor" / "kafka" / "libs"),
    }
