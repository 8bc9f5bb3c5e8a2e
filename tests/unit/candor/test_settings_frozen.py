"""Settings are frozen: nothing changes them after they are built, and a caller
that needs other values takes a validated copy with `candor.settings.replace`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from candor.settings import KafkaSettings, Settings, load_settings, replace


def _settings() -> Settings:
    return Settings(kafka=KafkaSettings(bootstrap="127.0.0.1:9092"), home=Path("/srv/candor"))


def test_assignment_to_settings_or_a_section_raises() -> None:
    s = _settings()
    with pytest.raises(ValidationError, match="frozen"):
        s.home = Path("/elsewhere")  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        s.kafka.topic_prefix = "other."  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        s.streams.batch_max = 1  # type: ignore[misc]
    assert s.home == Path("/srv/candor") and s.kafka.topic_prefix == ""


def test_replace_changes_only_what_it_names() -> None:
    s = _settings()
    copy = replace(
        s,
        home=Path("/tmp/h"),
        kafka={"topic_prefix": "t-1.", "partitions": 2},
        privacy={"master_key": SecretStr("ab" * 32)},
    )
    assert copy.home == Path("/tmp/h")
    assert (copy.kafka.topic_prefix, copy.kafka.partitions) == ("t-1.", 2)
    assert copy.privacy.master_key is not None
    assert copy.privacy.master_key.get_secret_value() == "ab" * 32
    # everything else as it was
    assert copy.kafka.bootstrap == s.kafka.bootstrap
    assert copy.kafka.replication_factor == s.kafka.replication_factor == 1
    assert copy.privacy.key_reload_s == s.privacy.key_reload_s
    assert copy.clickhouse == s.clickhouse and copy.streams == s.streams
    # and the original untouched
    assert (s.home, s.kafka.topic_prefix, s.kafka.partitions) == (Path("/srv/candor"), "", 12)
    assert s.privacy.master_key is None


def test_replace_validates_the_copy() -> None:
    s = _settings()
    with pytest.raises(ValidationError, match="partitions"):
        replace(s, kafka={"partitions": 0})
    with pytest.raises(ValidationError, match="frames_per_token_s"):
        replace(s, frames={"frames_per_token_s": 0})
    with pytest.raises(ValidationError, match="home"):
        replace(s, home=42)
    # converted as when built from the environment
    assert replace(s, home="/tmp/x").home == Path("/tmp/x")
    assert replace(s, streams={"batch_max": "7"}).streams.batch_max == 7


def test_replace_refuses_names_settings_does_not_have() -> None:
    s = _settings()
    with pytest.raises(TypeError, match="'partition'"):
        replace(s, kafka={"partition": 3})
    with pytest.raises(TypeError, match="'kafak'"):
        replace(s, kafak={"partitions": 3})


def test_an_unset_replication_factor_is_filled_in_again_for_the_copy() -> None:
    local = _settings()
    remote = replace(local, kafka={"bootstrap": "kafka-0.prod:9092", "replication_factor": None})
    assert (local.kafka.replication_factor, remote.kafka.replication_factor) == (1, 3)


def test_load_settings_reads_the_flat_shortcuts_into_a_frozen_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CANDOR_KAFKA_BOOTSTRAP", "10.1.2.3:9092")
    monkeypatch.setenv("CANDOR_CLICKHOUSE_URL", "http://10.1.2.4:8123")
    monkeypatch.setenv("CANDOR_KAFKA__PARTITIONS", "5")
    s = load_settings()
    assert (s.kafka.bootstrap, s.clickhouse.url, s.kafka.partitions) == (
        "10.1.2.3:9092",
        "http://10.1.2.4:8123",
        5,
    )
    # a copy reads no environment: what changed there since does not leak in
    monkeypatch.setenv("CANDOR_KAFKA__PARTITIONS", "9")
    assert replace(s, kafka={"topic_prefix": "x."}).kafka.partitions == 5
    with pytest.raises(ValidationError, match="frozen"):
        s.clickhouse.url = "http://elsewhere:8123"  # type: ignore[misc]


def test_the_replication_default_follows_the_bootstrap_shortcut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    for name in list(os.environ):
        if name.startswith("CANDOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CANDOR_KAFKA_BOOTSTRAP", "kafka-0.prod.example:9092")
    assert load_settings().kafka.replication_factor == 3  # not the local stack's 1
    monkeypatch.setenv("CANDOR_KAFKA__REPLICATION_FACTOR", "2")
    assert load_settings().kafka.replication_factor == 2
