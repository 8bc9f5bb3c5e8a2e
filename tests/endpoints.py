"""Where the Kafka, ClickHouse and Prometheus of a test session are (`Endpoints`), and
how they are found with Docker."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field

import pytest

from candor import stack
from candor.settings import ClickHouseSettings, KafkaSettings, Settings


@dataclass
class Endpoints:
    """Where the servers of this test session are, and whether we may restart them."""

    kafka_bootstrap: str
    clickhouse_url: str
    prometheus_url: str
    kind: str  # "env" | "docker" | "local"
    settings: Settings
    cleanup: list[object] = field(default_factory=list)

    @property
    def controllable(self) -> bool:
        return self.kind == "local"

    def restart(self, server: str) -> None:
        """Stop and start one local server (clean stop), blocking until it serves."""
        if not self.controllable:
            pytest.skip(f"cannot restart {server}: it is run outside this test session")
        stack.run_script(self.settings, server, "stop")
        stack.run_script(self.settings, server, "start")

    def kill9(self, server: str) -> None:
        """kill -9 one local server by its PID file (no clean shutdown)."""
        if not self.controllable:
            pytest.skip(f"cannot kill {server}: it is run outside this test session")
        from tests.harness import kill9_pidfile

        kill9_pidfile(self.settings.home / server / f"{server}.pid")

    def start(self, server: str) -> None:
        stack.run_script(self.settings, server, "start")


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def endpoints_from_docker() -> Endpoints:  # pragma: no cover - needs a Docker engine
    from testcontainers.clickhouse import ClickHouseContainer
    from testcontainers.kafka import KafkaContainer

    kafka = KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft()
    kafka.start()
    ch = ClickHouseContainer("clickhouse/clickhouse-server:25.8")
    ch.start()
    ch_url = f"http://{ch.get_container_host_ip()}:{ch.get_exposed_port(8123)}"
    settings = Settings(
        kafka=KafkaSettings(bootstrap=kafka.get_bootstrap_server()),
        clickhouse=ClickHouseSettings(url=ch_url, user=ch.username, password=ch.password),
    )
    return Endpoints(
        settings.kafka.bootstrap,
        ch_url,
        settings.prometheus_url,
        "docker",
        settings,
        cleanup=[kafka, ch],
    )
