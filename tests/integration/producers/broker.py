"""What the producer integration tests share: per-test topics on the shared
Kafka, a consumer that reads a whole topic back, the events of capture records,
and a private broker (deploy/local/kafka.sh in a temporary CANDOR_HOME)."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import Settings, replace
from candor.stack import free_port
from schemas.batch import decode_capture
from tests.harness import REPO

KAFKA_SH = REPO / "deploy" / "local" / "kafka.sh"
PARTITIONS = 4


@dataclass(frozen=True)
class Consumed:
    """One record read back: partition, offset, key and value."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


def make_topic(settings: Settings, name: str, partitions: int = PARTITIONS) -> str:
    """Create `name` with `partitions` partitions on `settings`' cluster."""
    own = replace(settings, kafka={"partitions": partitions})
    assert create_topics(own, [TopicSpec(name, "device_id", "delete", 1)]) == {name: "created"}
    return name


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    want: int | None = None,
    settle_s: float = 3.0,
    timeout_s: float = 60.0,
) -> list[Consumed]:
    """Every record of `topic` from the beginning, partition by partition in
    offset order. Stops when `want` records arrived and nothing more came for
    `settle_s` (so extra records would be seen), or after `timeout_s`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{topic}-{time.time()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10)
        parts = sorted(meta.topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        got: list[Consumed] = []
        deadline = time.monotonic() + timeout_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=0.5)
            for m in batch:
                err = m.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, err
                    continue
                value, partition, offset = m.value(), m.partition(), m.offset()
                assert value is not None and partition is not None and offset is not None
                got.append(Consumed(partition, offset, m.key(), value))
            if batch:
                quiet_since = time.monotonic()
            enough = want is None or len(got) >= want
            if enough and time.monotonic() - quiet_since >= settle_s:
                break
        return got
    finally:
        consumer.close()


def capture_events(records: list[Consumed]) -> list[tuple[Consumed, dict[str, Any]]]:
    """The events of `capture.events` records (DeviceBatches or single events),
    each with the record that held it, in record order. Asserts that no
    event of a batch was refused and that a batch is keyed by its device."""
    out: list[tuple[Consumed, dict[str, Any]]] = []
    for record in records:
        decoded = decode_capture(record.value)
        assert decoded.rejected == [], decoded.rejected
        assert record.key == decoded.header.device_id.encode()
        out.extend((record, event) for event in decoded.events)
    return out


class PrivateBroker:
    """A Kafka broker of this test session alone (deploy/local/kafka.sh in a
    temporary CANDOR_HOME), so stopping it disturbs nobody."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.controller_port = free_port()
        self.env = {
            **os.environ,
            "CANDOR_HOME": str(home),
            "CANDOR_KAFKA_PORT": str(self.port),
            "CANDOR_KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(
            [str(KAFKA_SH), "start"], env=self.env, check=True, capture_output=True, timeout=180
        )

    def stop(self) -> None:
        subprocess.run(
            [str(KAFKA_SH), "stop"], env=self.env, check=True, capture_output=True, timeout=120
        )
