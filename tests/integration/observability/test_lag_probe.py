"""The lag probe on a real broker: what a group has left to read, per
partition, measured from outside the group (it never joins it)."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from backends.kafka.lag import LagProbe
from backends.kafka.topics import TopicSpec, create_topics
from candor.settings import Settings, replace


def test_the_probe_reads_a_groups_lag_without_joining_it(settings: Settings, unique: str) -> None:
    topic, group = f"it.lag.{unique}", f"it-lag-{unique}"
    own = replace(settings, kafka={"partitions": 2})
    create_topics(own, [TopicSpec(topic, "device_id", "delete", 1)])
    producer = Producer({**settings.kafka.client_config(), "acks": "all"})
    for partition, n in ((0, 10), (1, 5)):
        for i in range(n):
            producer.produce(topic, value=b"x%d" % i, partition=partition)
    assert producer.flush(30) == 0

    probe = LagProbe.create(settings.kafka.client_config(), group, [topic, f"{topic}.none"])
    try:
        # nothing committed: everything retained is to read; a missing topic is skipped
        assert probe.measure() == {(topic, 0): 10, (topic, 1): 5}
        member = Consumer(
            {**settings.kafka.client_config(), "group.id": group, "enable.auto.commit": False}
        )
        member.commit(
            offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 5)], asynchronous=False
        )
        member.close()
        assert probe.measure() == {(topic, 0): 6, (topic, 1): 0}
        # measured from outside: the group has no member
        admin = AdminClient(settings.kafka.client_config())
        described = admin.describe_consumer_groups([group])[group].result(10)
        assert list(described.members) == []
    finally:
        probe.close()
