"""The `kafka` and `retention` settings sections (``CANDOR_KAFKA__*``,
``CANDOR_RETENTION__*``), composed into `candor.settings.Settings`."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class KafkaSettings(BaseModel):
    """Where Kafka is and how Candor's topics are laid out."""

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        "", description="prepended to every Candor topic name (one cluster, several pipelines)")
    partitions: int = Field(12, ge=1, description="default partition count of Candor topics")
    replication_factor: int = Field(1, ge=1)
    client_id: str = "candor"

    def topic(self, name: str) -> str:
        """The real name of one of Candor's topics (`schemas.topics.Topic`)."""
        return self.topic_prefix + name

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings shared by every Candor client."""
        return {"bootstrap.servers": self.bootstrap, "client.id": self.client_id}


class RetentionSettings(BaseModel):
    """How long data is kept, per place (Kafka topics and ClickHouse TTLs)."""

    capture_events_hours: int = 72
    capture_clean_hours: int = 168
    dlq_hours: int = 336
    activity_hours: int = 24 * 30
    clickhouse_events_days: int = 90


class HasKafka(Protocol):
    """Settings that carry a `kafka` section (the composed `candor.settings.Settings`)."""

    @property
    def kafka(self) -> KafkaSettings: ...
