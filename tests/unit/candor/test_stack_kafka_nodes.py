"""`candor stack up --kafka-nodes N` runs Kafka through kafka_cluster.sh, and `down` and
`status` find that cluster again from the state directory (no servers started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from candor import stack
from candor.settings import KafkaSettings, Settings


def _settings(home: Path) -> Settings:
    return Settings(home=home, kafka=KafkaSettings(bootstrap="127.0.0.1:28092"))


def test_one_node_is_the_default(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    assert stack.kafka_nodes(s) == 1
    assert stack._script(s, "kafka") == ("kafka", {})


def test_a_recorded_cluster_is_run_by_the_cluster_script_on_the_settings_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _settings(tmp_path)
    monkeypatch.setattr(stack, "_script_status", lambda settings, server: False)
    stack._choose_kafka(s, 3)
    assert stack.kafka_nodes(s) == 3
    assert stack._script(s, "kafka") == (
        "kafka_cluster",
        {"CANDOR_KAFKA_NODES": "3", "CANDOR_KAFKA_CLUSTER_PORT": "28092"},
    )
    assert stack._script(s, "clickhouse") == ("clickhouse", {})
    stack._choose_kafka(s, 1)  # back to one node
    assert stack._script(s, "kafka") == ("kafka", {})


def test_switching_node_count_while_kafka_runs_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _settings(tmp_path)
    monkeypatch.setattr(stack, "_script_status", lambda settings, server: True)
    with pytest.raises(stack.StackError, match="stack down"):
        stack._choose_kafka(s, 3)
    assert stack.kafka_nodes(s) == 1
    with pytest.raises(stack.StackError, match="at least 1"):
        stack._choose_kafka(s, 0)
