"""Candor's topics on a 3-broker Kafka cluster: replicated three times with two in-sync
replicas required, and an acknowledged record survives a kill -9 of a broker exactly once."""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

from backends.kafka.topics import create_topics, topic_specs
from candor.settings import Settings, replace
from producers.sdk.kafka_transport import producer_config
from tests.cluster.clusters import NODES, KafkaCluster
from tests.harness import wait_until

RECORDS = 30_000


def test_topics_are_replicated_on_three_brokers_with_min_isr_two(
    cluster_settings: Settings,
) -> None:
    s = cluster_settings
    create_topics(s)
    admin = AdminClient(s.kafka.client_config())
    names = [spec.name for spec in topic_specs(s)]

    md = _metadata_with(admin, names)
    assert len(md.brokers) == NODES
    for name in names:
        parts = md.topics[name].partitions
        assert len(parts) == 12, name
        assert all(len(p.replicas) == 3 for p in parts.values()), name
        leaders = {p.leader for p in parts.values()}
        assert len(leaders) == NODES, f"{name}: leaders on {leaders} only"
    for name in names:
        assert _topic_config(admin, name)["min.insync.replicas"] == "2", name


def test_topics_create_takes_replication_and_min_insync_from_settings(
    cluster_settings: Settings,
) -> None:
    """Settings, not the cluster's defaults (replication 3, min ISR 2), decide."""
    s = replace(cluster_settings, kafka={"replication_factor": 2, "min_insync_replicas": 1})
    spec = next(t for t in topic_specs(s) if t.name == s.kafka.topic("capture.events"))
    assert create_topics(s, [spec]) == {spec.name: "created"}
    admin = AdminClient(s.kafka.client_config())
    parts = _metadata_with(admin, [spec.name]).topics[spec.name].partitions
    assert len(parts) == 12 and all(len(p.replicas) == 2 for p in parts.values())
    assert _topic_config(admin, spec.name)["min.insync.replicas"] == "1"
    assert create_topics(s, [spec]) == {spec.name: "exists"}


def _metadata_with(admin: AdminClient, names: list[str]) -> Any:
    """One metadata answer that holds every topic of ``names`` with its 12
    partitions. A new topic's metadata reaches the three brokers within
    moments, and each call may be answered by another broker: the answer that
    passed the check is the one read (a second call could miss the topic)."""
    answer: list[Any] = []

    def known() -> bool:
        md = admin.list_topics(timeout=10)
        if all(n in md.topics and len(md.topics[n].partitions) == 12 for n in names):
            answer.append(md)
            return True
        return False

    wait_until(known, 30, "the new topics in the brokers' metadata")
    return answer[-1]


def _topic_config(admin: AdminClient, name: str) -> dict[str, str]:
    """A new topic's configuration, once every broker knows the topic (metadata spreads)."""
    deadline = time.monotonic() + 30
    while True:
        future = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)])
        try:
            entries = next(iter(future.values())).result(timeout=10)
            return {k: v.value for k, v in entries.items()}
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_acknowledged_records_survive_a_broker_kill9_exactly_once(
    cluster_settings: Settings, kafka_cluster: KafkaCluster
) -> None:
    s = cluster_settings
    topic = s.kafka.topic("capture.events")
    create_topics(s)
    producer = Producer(producer_config(s.kafka.bootstrap))
    acked: list[int] = []
    failed: list[int] = []

    def delivered(err: KafkaError | None, msg: object) -> None:
        n = int(msg.value())  # type: ignore[attr-defined]
        (failed if err is not None else acked).append(n)

    def produce() -> None:
        for n in range(RECORDS):  # ~3k records/s, bounded
            producer.produce(
                topic, key=f"dev-{n % 97}", value=str(n).encode(), on_delivery=delivered
            )
            producer.poll(0)
            if n % 300 == 299:
                time.sleep(0.1)
        producer.flush(60)

    sender = threading.Thread(target=produce)
    sender.start()
    while len(acked) < RECORDS // 3:
        time.sleep(0.05)
    kafka_cluster.kill9(2)  # mid-stream, no controlled shutdown
    while sender.is_alive() and len(acked) < 2 * RECORDS // 3:
        time.sleep(0.05)
    kafka_cluster.start_node(2)
    sender.join(120)
    assert not sender.is_alive()
    assert not failed, f"{len(failed)} records refused"
    assert len(acked) == RECORDS

    consumer = Consumer(
        {
            **s.kafka.client_config(),
            "group.id": "unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, -2) for p in parts])
    seen: list[int] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 60
    while len(at_end) < len(parts) and time.monotonic() < deadline:
        for m in consumer.consume(5000, timeout=0.5):
            err = m.error()
            if err is None:
                seen.append(int(m.value() or b"-1"))
            elif err.code() == KafkaError._PARTITION_EOF:
                at_end.add(int(m.partition() or 0))
    consumer.close()
    assert len(seen) == RECORDS, "a record was lost or written twice"
    assert set(seen) == set(range(RECORDS))
