"""Real Kafka: topics, idempotent produce, consumer-group commit and resume."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from backends.kafka.topics import TopicSpec, create_topics, describe_topics, topic_specs
from candor.settings import Settings, replace

N = 10_000
PARTITIONS = 6


def _consume_until(consumer: Consumer, want: int, timeout: float) -> list[tuple[int, int, bytes]]:
    got: list[tuple[int, int, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for m in consumer.consume(1000, timeout=0.5):
            error = m.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                continue
            partition, offset, value = m.partition(), m.offset(), m.value()
            assert partition is not None and offset is not None and value is not None
            got.append((partition, offset, value))
    return got


def test_design_topics_are_created_once_with_their_policies(settings: Settings) -> None:
    first = create_topics(settings)
    again = create_topics(settings)
    names = {s.name for s in topic_specs(settings)}
    assert set(first) == names and set(again) == names
    assert set(again.values()) == {"exists"}
    parts = describe_topics(settings)
    assert all(parts[n] == settings.kafka.partitions for n in names)
    admin = AdminClient(settings.kafka.client_config())
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    res = ConfigResource(ConfigResource.Type.TOPIC, "consent.policies")
    cfg = admin.describe_configs([res])[res].result()
    assert cfg["cleanup.policy"].value == "compact"
    res = ConfigResource(ConfigResource.Type.TOPIC, "capture.events")
    cfg = admin.describe_configs([res])[res].result()
    assert cfg["cleanup.policy"].value == "delete"
    assert int(cfg["retention.ms"].value) == settings.retention.capture_events_hours * 3_600_000


def test_group_commits_and_a_restarted_consumer_resumes_without_rereading(
    settings: Settings, unique: str
) -> None:
    topic = f"it.kafka.{unique}"
    spec = TopicSpec(topic, "device_id", "delete", 1)
    settings = replace(settings, kafka={"partitions": PARTITIONS})
    assert create_topics(settings, [spec]) == {topic: "created"}

    producer = Producer(
        {
            **settings.kafka.client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "zstd",
        }
    )
    delivered: list[int] = []

    def on_delivery(err: KafkaError | None, msg: object) -> None:
        assert err is None, err
        delivered.append(1)

    for i in range(N):
        producer.produce(topic, key=f"dev-{i % 50}", value=str(i).encode(), on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert len(delivered) == N

    group = f"it-group-{unique}"
    conf = {
        **settings.kafka.client_config(),
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    }
    first = Consumer(conf)
    first.subscribe([topic])
    got = _consume_until(first, N, timeout=60)
    assert sorted(int(v) for _, _, v in got) == list(range(N))
    first.commit(asynchronous=False)
    committed = first.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10)
    assert sum(tp.offset for tp in committed) == N
    first.close()

    # 100 more after the commit: a resumed consumer sees exactly these, none of the first N.
    for i in range(N, N + 100):
        producer.produce(topic, key=f"dev-{i % 50}", value=str(i).encode())
    assert producer.flush(30) == 0

    second = Consumer(conf)
    second.subscribe([topic])
    resumed = _consume_until(second, 100, timeout=60)
    # drain a little longer: nothing older may show up
    resumed += _consume_until(second, 10**9, timeout=2)
    second.close()
    assert sorted(int(v) for _, _, v in resumed) == list(range(N, N + 100))
