"""A private pipeline per test: its own topic prefix on the shared broker, short
session gaps so sessions close within the test, and a consent set-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from candor.settings import Settings
from candor.topics import create_topics
from sinks.connection import connect
from sinks.migrate import migrate


@pytest.fixture
def pipeline_settings(settings: Settings, unique: str, tmp_path: Path) -> Iterator[Settings]:
    s = settings.model_copy(deep=True)
    s.home = tmp_path / "home"
    s.kafka.topic_prefix = f"e2e-{unique}."
    s.kafka.partitions = 4
    s.clickhouse.database = f"candor_e2e_{unique}"
    st = s.streams
    st.session_gap_s, st.grace_s, st.minute_quiet_s = 20, 2, 5
    st.action_quiet_s, st.timer_interval_s, st.batch_within_s = 2, 1, 0.2
    create_topics(s)
    migrate(s)  # workers read subjects' data keys from ClickHouse
    yield s
    connect(s, database="").command(f"DROP DATABASE IF EXISTS {s.clickhouse.database}")
    connect(s, database="").command(f"DROP DATABASE IF EXISTS analyst_{s.clickhouse.database}")
