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
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from candor import stack
from candor.settings import ClickHouseSettings, KafkaSettings, Settings, replace
from tests.endpoints import Endpoints, docker_answers, endpoints_from_docker
from tests.harness import REPO


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
    if os.environ.get("CANDOR_TEST_DOCKER", "auto") != "never" and docker_answers():
        ep = endpoints_from_docker()
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
