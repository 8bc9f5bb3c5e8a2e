"""What `candor topics create` asks the cluster for: replication factor and
min.insync.replicas from settings, 3 and 2 in production, 1 and 1 on the one-node stack."""

from __future__ import annotations

import pytest

from backends.kafka.topics import new_topics
from candor.settings import KafkaSettings, Settings, child_env


def _asked(settings: Settings) -> dict[str, tuple[int, int, dict[str, str]]]:
    return {
        t.topic: (t.num_partitions, t.replication_factor, dict(t.config or {}))
        for t in new_topics(settings)
    }


def test_production_topics_have_three_replicas_and_accept_writes_only_with_two_in_sync() -> None:
    asked = _asked(Settings(kafka=KafkaSettings(bootstrap="kafka-0.kafka:9092")))
    assert len(asked) == 8
    for name, (partitions, replicas, config) in asked.items():
        assert (partitions, replicas) == (12, 3), name
        assert config["min.insync.replicas"] == "2", name
    assert asked["capture.events"][2]["cleanup.policy"] == "delete"
    assert asked["consent.policies"][2]["cleanup.policy"] == "compact"


def test_the_one_node_stack_gets_one_replica_and_min_insync_one() -> None:
    for settings in (
        Settings(),
        Settings(local_stack=True, kafka=KafkaSettings(bootstrap="10.0.0.5:9092")),
    ):
        for _, replicas, config in _asked(settings).values():
            assert replicas == 1 and config["min.insync.replicas"] == "1"


@pytest.mark.parametrize(
    ("rf", "isr", "want"), [(3, None, (3, 2)), (5, 3, (5, 3)), (1, None, (1, 1)), (2, 4, (2, 2))]
)
def test_explicit_settings_win_and_min_insync_never_exceeds_the_replicas(
    rf: int, isr: int | None, want: tuple[int, int]
) -> None:
    s = Settings(kafka=KafkaSettings(replication_factor=rf, min_insync_replicas=isr))
    for _, replicas, config in _asked(s).values():
        assert (replicas, int(config["min.insync.replicas"])) == want


def test_child_processes_get_the_same_durability() -> None:
    s = Settings(local_stack=False)
    env = child_env(s, {})
    assert env["CANDOR_KAFKA__REPLICATION_FACTOR"] == "3"
    assert env["CANDOR_KAFKA__MIN_INSYNC_REPLICAS"] == "2"
