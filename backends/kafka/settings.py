"""The `kafka` and `retention` settings sections (``CANDOR_KAFKA__*``,
``CANDOR_RETENTION__*``), composed into `candor.settings.Settings`."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

PRODUCTION_REPLICATION = 3
PRODUCTION_MIN_INSYNC = 2


class KafkaSettings(BaseModel):
    """Where Kafka is and how Candor's topics are laid out."""

    model_config = ConfigDict(frozen=True)

    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = Field(
        "", description="prepended to every Candor topic name (one cluster, several pipelines)"
    )
    partitions: int = Field(12, ge=1, description="default partition count of Candor topics")
    replication_factor: int | None = Field(
        None,
        ge=1,
        description="replicas of each Candor topic (and the workers' changelogs); "
        "unset: 3, or 1 on the local stack (`candor.settings.Settings` fills it in)",
    )
    min_insync_replicas: int | None = Field(
        None,
        ge=1,
        description="`min.insync.replicas` of each Candor topic: acks=all writes "
        "fail below it; unset: 2, or 1 when the replication factor is 1",
    )
    client_id: str = "candor"

    def replicas(self) -> int:
        """The replication factor of new topics (production default 3 when unset)."""
        return self.replication_factor or PRODUCTION_REPLICATION

    def min_insync(self) -> int:
        """`min.insync.replicas` of new topics: as set, else 2 (1 with one replica),
        never above the replication factor."""
        if self.min_insync_replicas is not None:
            return min(self.min_insync_replicas, self.replicas())
        return 1 if self.replicas() == 1 else PRODUCTION_MIN_INSYNC

    def topic(self, name: str) -> str:
        """The real name of one of Candor's topics (`schemas.topics.Topic`)."""
        return self.topic_prefix + name

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings shared by every Candor client."""
        return {"bootstrap.servers": self.bootstrap, "client.id": self.client_id}


class RetentionSettings(BaseModel):
    """How long data is kept, per place (Kafka topics and ClickHouse TTLs)."""

    model_config = ConfigDict(frozen=True)

    capture_events_hours: int = 72
    capture_clean_hours: int = 168
    dlq_hours: int = 336
    activity_hours: int = 24 * 30
    clickhouse_events_days: int = 90


class HasKafka(Protocol):
    """Settings that carry a `kafka` section (the composed `candor.settings.Settings`)."""

    @property
    def kafka(self) -> KafkaSettings: ...
