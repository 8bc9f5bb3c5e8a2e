"""The worker's default app id (its consumer group and changelog topics) follows the
topic prefix, so that two pipelines on one Kafka cluster never share device state."""

from __future__ import annotations

from candor.cli import build_parser
from candor.settings import KafkaSettings, Settings
from streams.app import default_app_id, worker_config


def test_without_a_prefix_the_app_id_is_the_documented_one() -> None:
    assert default_app_id(Settings(kafka=KafkaSettings(topic_prefix=""))) == "candor-streams"


def test_pipelines_with_different_prefixes_get_different_app_ids() -> None:
    a = default_app_id(Settings(kafka=KafkaSettings(topic_prefix="tenant-a.")))
    b = default_app_id(Settings(kafka=KafkaSettings(topic_prefix="tenant-b.")))
    assert a == "tenant-a.candor-streams" and a != b


def test_an_explicit_app_id_is_kept_by_the_parser() -> None:
    parser, _ = build_parser()
    assert parser.parse_args(["worker", "--app-id", "mine"]).app_id == "mine"
    assert parser.parse_args(["worker"]).app_id is None  # resolved from the settings


def test_the_worker_config_takes_the_default_unless_told() -> None:
    s = Settings(kafka=KafkaSettings(topic_prefix="tenant-a."))
    assert worker_config(s).app_id == "tenant-a.candor-streams"
    assert worker_config(s, app_id="mine").app_id == "mine"
