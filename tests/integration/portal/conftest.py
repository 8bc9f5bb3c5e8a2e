"""A private database, topic prefix and master key per test, rows of two people
(A and B) written straight into ClickHouse, and the portal served in a thread."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from backends.clickhouse.connection import connect
from backends.kafka.topics import create_topics
from candor.settings import Settings, replace
from sinks.migrate import migrate
from tests.integration.portal.people import MASTER, Person, seed_person
from tests.integration.portal.server import PortalThread


@pytest.fixture
def portal_settings(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = replace(
        settings,
        home=tmp_path / "home",
        privacy={"master_key": SecretStr(MASTER.hex())},
        kafka={"topic_prefix": f"portal-{unique}.", "partitions": 2},
        clickhouse={"database": f"candor_portal_{unique}"},
        portal={"erase_settle_s": 0.5},
    )
    create_topics(s)
    migrate(s)
    yield s
    admin = connect(s, database="")
    admin.command(f"DROP DATABASE IF EXISTS analyst_{s.clickhouse.database}")
    admin.command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")


@pytest.fixture
def people(portal_settings: Settings) -> tuple[Person, Person]:
    now_us = time.time_ns() // 1000
    return (
        seed_person(portal_settings, "subj-alice", now_us),
        seed_person(portal_settings, "subj-bob", now_us),
    )


@pytest.fixture
def portal(portal_settings: Settings) -> Iterator[PortalThread]:
    server = PortalThread(portal_settings).start()
    yield server
    server.stop()
