"""librdkafka error classification and the capture producer's configuration."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from producers.sdk.kafka_transport import classify, producer_config


@pytest.mark.parametrize(
    "error,reason,retriable,fatal",
    [
        (KafkaError(KafkaError._MSG_TIMED_OUT), "msg_timed_out", True, False),
        (KafkaError(KafkaError._ALL_BROKERS_DOWN), "all_brokers_down", True, False),
        (KafkaError(KafkaError._PURGE_QUEUE), "purge_queue", True, False),
        (KafkaError(KafkaError.NOT_ENOUGH_REPLICAS), "not_enough_replicas", True, False),
        (
            KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED),
            "topic_authorization_failed",
            True,
            False,
        ),
        (KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), "msg_size_too_large", False, False),
        (KafkaError(KafkaError.INVALID_RECORD), "invalid_record", False, False),
        (KafkaError(KafkaError._FATAL, "fenced", fatal=True), "fatal", True, True),
    ],
)
def test_errors_are_classified_for_the_spool(
    error: KafkaError, reason: str, retriable: bool, fatal: bool
) -> None:
    failure = classify(error)
    assert (failure.reason, failure.retriable, failure.fatal) == (reason, retriable, fatal)


def test_the_producer_is_idempotent_acks_all_and_compressed_by_default() -> None:
    config = producer_config("broker:9092", message_timeout_ms=12_000)
    assert config["bootstrap.servers"] == "broker:9092"
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["compression.type"] == "zstd"
    assert config["message.timeout.ms"] == 12_000


def test_overrides_win() -> None:
    config = producer_config("b:1", overrides={"linger.ms": 5, "compression.type": "lz4"})
    assert (config["linger.ms"], config["compression.type"]) == (5, "lz4")
