"""Session-wide fixtures: real Kafka and ClickHouse endpoints for the tests.

Endpoints are found in this order:
1. `CANDOR_KAFKA_BOOTSTRAP` / `CANDOR_CLICKHOUSE_URL` (servers someone else runs);
2. testcontainers, when a Docker engine answers;
3. the local stack (`deploy/local/`), started by this test session and stopped
   at its end — unless it was already up, in which case it is left running.

Unit tests (tests/unit) are guarded against sockets in tests/unit/conftest.py
and never request these fixtures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from candor import stack
from candor.settings import ClickHouseSettings, KafkaSettings, Settings, replace

REPO = Path(__file__).resolve().parent.parent


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


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _from_docker() -> Endpoints:  # pragma: no cover - needs a Docker engine
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


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    env_kafka = os.environ.get("CANDOR_KAFKA_BOOTSTRAP")
    env_ch = os.environ.get("CANDOR_CLICKHOUSE_URL")
    if env_kafka and env_ch:
        settings = Settings(
            kafka=KafkaSettings(bootstrap=env_kafka), clickhouse=ClickHouseSettings(url=env_ch)
        )
        yield Endpoints(env_kafka, env_ch, settings.prometheus_url, "env", settings)
        return
    if os.environ.get("CANDOR_TEST_DOCKER", "auto") != "never" and _docker_answers():
        ep = _from_docker()
        try:
            yield ep
        finally:
            for c in ep.cleanup:
                c.stop()  # type: ignore[attr-defined]
        return
    settings = replace(Settings(), home=Path(os.environ.get("CANDOR_HOME", REPO / ".candor")))
    already = [h.server for h in stack.status(settings) if h.up]
    stack.up(settings)
    ep = Endpoints(
        settings.kafka.bootstrap,
        settings.clickhouse.url,
        settings.prometheus_url,
        "local",
        settings,
    )
    try:
        yield ep
    finally:
        if os.environ.get("CANDOR_TEST_KEEP_STACK") != "1":
            started = tuple(s for s in stack.SERVERS if s not in already)
            stack.down(settings, started)


@pytest.fixture(scope="session")
def settings(endpoints: Endpoints) -> Settings:
    return endpoints.settings


@pytest.fixture
def unique() -> str:
    """A short random suffix for per-test topics, groups and databases."""
    return uuid.uuid4().hex[:10]
