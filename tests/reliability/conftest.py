"""A private Kafka + ClickHouse for tests that kill servers, so killing them
never disturbs the shared stack (other tests, a developer's demo)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from candor.settings import ClickHouseSettings, KafkaSettings, Settings
from tests.conftest import Endpoints
from tests.harness import REPO, free_port, kill9_pidfile

SCRIPTS = REPO / "deploy" / "local"


@dataclass
class PrivateStack:
    home: Path
    env: dict[str, str]
    settings: Settings

    def run(self, server: str, action: str) -> None:
        proc = subprocess.run(
            ["bash", str(SCRIPTS / f"{server}.sh"), action],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{server} {action}: {proc.stdout}\n{proc.stderr}"

    def kill9(self, server: str) -> None:
        kill9_pidfile(self.home / server / f"{server}.pid")


@pytest.fixture
def private_stack(endpoints: Endpoints, tmp_path: Path) -> Iterator[PrivateStack]:
    home = tmp_path / "stack"
    shared_libs = endpoints.settings.home / "kafka" / "libs"
    if shared_libs.is_dir():  # reuse the jars Maven already resolved
        (home / "kafka").mkdir(parents=True)
        shutil.copytree(shared_libs, home / "kafka" / "libs", symlinks=True)
    kport, cport, hport, tport = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "CANDOR_HOME": str(home),
        "CANDOR_KAFKA_PORT": str(kport),
        "CANDOR_KAFKA_CONTROLLER_PORT": str(cport),
        "CANDOR_KAFKA_HEAP": "384m",
        "CANDOR_CLICKHOUSE_HTTP_PORT": str(hport),
        "CANDOR_CLICKHOUSE_TCP_PORT": str(tport),
    }
    settings = Settings(
        home=home,
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{kport}", partitions=4),
        clickhouse=ClickHouseSettings(url=f"http://127.0.0.1:{hport}"),
    )
    stack = PrivateStack(home, env, settings)
    stack.run("kafka", "start")
    stack.run("clickhouse", "start")
    try:
        yield stack
    finally:
        for server in ("clickhouse", "kafka"):
            subprocess.run(
                ["bash", str(SCRIPTS / f"{server}.sh"), "stop"],
                env=env,
                capture_output=True,
                check=False,
            )
