"""A private Kafka + ClickHouse for tests that kill servers, so killing them
never disturbs the shared stack (other tests, a developer's demo)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from candor.settings import ClickHouseSettings, KafkaSettings, Settings
from tests.endpoints import Endpoints
from tests.harness import free_port
from tests.reliability.private_stack import SCRIPTS, PrivateStack


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
