"""Candor's Kafka topics (`schemas.topics.Topic`, docs/architecture.md) and
their idempotent creation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from backends.kafka.settings import HasKafka, KafkaSettings, RetentionSettings
from schemas.topics import Topic

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000


class TopicSettings(Protocol):
    """The sections topic administration reads (`candor.settings.Settings` has them)."""

    @property
    def kafka(self) -> KafkaSettings: ...
    @property
    def retention(self) -> RetentionSettings: ...


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, message key, cleanup policy and retention."""

    name: str
    key: str
    cleanup: str  # "delete" | "compact"
    retention_hours: int | None

    def config(self, min_insync_replicas: int = 1) -> dict[str, str]:
        """The topic-level configs Candor asks for (`min.insync.replicas` from settings)."""
        cfg = {"cleanup.policy": self.cleanup, "min.insync.replicas": str(min_insync_replicas)}
        if self.retention_hours is not None:
            cfg["retention.ms"] = str(self.retention_hours * HOUR_MS)
        if self.cleanup == "compact":
            cfg["min.cleanable.dirty.ratio"] = "0.1"
            cfg["segment.ms"] = str(HOUR_MS)
        return cfg


def topic_specs(settings: TopicSettings) -> list[TopicSpec]:
    """Every `Topic`, with its key, cleanup policy and retention from settings."""
    r = settings.retention
    t = settings.kafka.topic
    return [
        TopicSpec(t(Topic.CAPTURE_EVENTS), "device_id", "delete", r.capture_events_hours),
        TopicSpec(t(Topic.CAPTURE_CLEAN), "device_id", "delete", r.capture_clean_hours),
        TopicSpec(t(Topic.CAPTURE_DLQ), "device_id", "delete", r.dlq_hours),
        TopicSpec(t(Topic.CONSENT_POLICIES), "subject", "compact", None),
        TopicSpec(t(Topic.ACTIVITY_SESSIONS), "subject", "delete", r.activity_hours),
        TopicSpec(t(Topic.ACTIVITY_MINUTES), "subject", "delete", r.activity_hours),
        TopicSpec(t(Topic.TRAINING_ACTIONS), "subject", "delete", r.activity_hours),
        TopicSpec(t(Topic.ACTIVITY_LATE), "device_id", "delete", r.activity_hours),
    ]


def new_topics(settings: TopicSettings, specs: list[TopicSpec] | None = None) -> list[NewTopic]:
    """What `create_topics` asks the cluster for: every topic with the settings'
    partitions, replication factor and `min.insync.replicas` (production 3 and 2;
    1 and 1 on the one-node stack, see `KafkaSettings`)."""
    specs = specs if specs is not None else topic_specs(settings)
    k = settings.kafka
    return [
        NewTopic(
            s.name,
            num_partitions=k.partitions,
            replication_factor=k.replicas(),
            config=s.config(k.min_insync()),
        )
        for s in specs
    ]


def create_topics(
    settings: TopicSettings, specs: list[TopicSpec] | None = None, timeout: float = 30.0
) -> dict[str, str]:
    """Create missing topics; leave existing ones alone.

    Returns {topic: "created" | "exists"}. Raises KafkaException when the broker
    refuses for any other reason than the topic existing (e.g. a replication
    factor above the number of brokers). Blocks up to `timeout`.
    """
    admin = AdminClient(settings.kafka.client_config())
    new = new_topics(settings, specs)
    result: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            result[name] = "created"
            log.info("created topic %s", name)
        except KafkaException as err:
            if err.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                result[name] = "exists"
            else:
                raise
    return result


def describe_topics(settings: HasKafka, timeout: float = 10.0) -> dict[str, int]:
    """{topic: partition count} for the topics that exist on the cluster."""
    admin = AdminClient(settings.kafka.client_config())
    md = admin.list_topics(timeout=timeout)
    return {name: len(t.partitions) for name, t in md.topics.items()}
