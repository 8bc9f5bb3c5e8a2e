"""Dead letters: messages the sink cannot land, sent to the DLQ topic with why and whence.

Headers (all UTF-8 text): ``reason`` (a stable label: ``undecodable``,
``unknown_schema``, ``invalid_field``, ``unmappable``, ``rejected_by_clickhouse``),
``error`` (the decoder's or the server's message, at most 2000 chars),
``original_topic``, ``original_partition``, ``original_offset``, and
``sink_table``. The value and key are the original bytes. The DLQ topic is
itself sunk into the ``dead_letters`` table (`sinks.rows.dead_letter_row`).

Delivery is at-least-once: the sink flushes the DLQ producer before it
commits the batch, and a replay after a crash may produce a dead letter
twice; ``dead_letters`` (ReplacingMergeTree on the original coordinates)
collapses the copies.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from backends.kafka.settings import HasKafka
from schemas.dead_letter import DeadLetter
from sinks import metrics
from sinks.errors import SinkError


def dead_letter_headers(letter: DeadLetter, table: str) -> list[tuple[str, str | bytes | None]]:
    """The Kafka headers of ``letter`` plus the table the sink failed to land it in. Pure."""
    return letter.sink_headers(table)


class DeadLetterDeliveryFailed(SinkError):
    """The DLQ topic did not acknowledge a dead letter; the batch is not committed."""


class DeadLetterProducer:
    """Produces dead letters to one topic; `flush` blocks until all are acknowledged."""

    def __init__(self, settings: HasKafka, topic: str, table: str) -> None:
        self.topic = topic
        self.table = table
        self._producer = Producer(
            {
                **settings.kafka.client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
            }
        )
        self._errors: list[KafkaError] = []

    def send(self, letter: DeadLetter) -> None:
        """Queue ``letter`` (non-blocking) and count it by reason."""
        self._producer.produce(
            self.topic,
            key=letter.key,
            value=letter.value,
            headers=dead_letter_headers(letter, self.table),
            on_delivery=self._on_delivery,
        )
        self._producer.poll(0)
        metrics.DEAD_LETTERS.labels(letter.reason).inc()

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every queued dead letter is acknowledged.

        Raises `DeadLetterDeliveryFailed` when one was refused or the timeout passed.
        """
        remaining = self._producer.flush(timeout)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise DeadLetterDeliveryFailed(
                f"{remaining} dead letters unacknowledged, errors: {errors[:3]}"
            )

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err)
