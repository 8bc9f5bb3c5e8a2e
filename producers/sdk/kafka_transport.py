"""The confluent-kafka implementation of `producers.sdk.transport.Transport`.

The only module of the SDK that imports confluent_kafka. It renders the
producer configuration, classifies librdkafka errors into `DeliveryFailure`s
and adapts the per-message delivery callback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from producers.sdk.spool_frame import Header
from producers.sdk.transport import DeliveryCallback, DeliveryFailure

ConfigValue = str | int | float | bool

DEFAULT_MESSAGE_TIMEOUT_MS = 30_000

# Per-record errors that no retry can cure: the record itself is at fault.
_PERMANENT = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.INVALID_RECORD,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError.UNSUPPORTED_FOR_MESSAGE_FORMAT,
        KafkaError._INVALID_ARG,
        KafkaError._BAD_MSG,
    }
)


def producer_config(
    bootstrap: str,
    *,
    client_id: str = "candor-capture",
    message_timeout_ms: int = DEFAULT_MESSAGE_TIMEOUT_MS,
    overrides: Mapping[str, ConfigValue] | None = None,
) -> dict[str, ConfigValue]:
    """librdkafka settings of the capture producer; `overrides` win.

    Idempotent with acks=all so broker-side retries neither duplicate nor
    reorder; zstd for the best ratio on small Avro records at a CPU cost
    that is a fraction of encoding; a 20 ms linger to fill batches; a modest
    `message.timeout.ms` so undeliverable records come back to the spool
    instead of waiting in memory.
    """
    config: dict[str, ConfigValue] = {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 200_000,
        "queue.buffering.max.kbytes": 262_144,
        "message.timeout.ms": message_timeout_ms,
        # Java-compatible murmur2 key hashing (not librdkafka's CRC32 default):
        # the stream workers' Faust tables place a device's state by the same
        # hash, so state and input stay co-partitioned.
        "partitioner": "murmur2_random",
    }
    config.update(overrides or {})
    return config


def classify(error: KafkaError) -> DeliveryFailure:
    """The `DeliveryFailure` for a librdkafka error.

    Fatal errors (the idempotent producer lost its state) are fatal and
    retriable. The record-level errors in `_PERMANENT` are not retriable.
    Everything else (timeouts, brokers down, purges, leader changes,
    authorization or unknown topic while an operator fixes it) is retriable:
    keeping the record costs spool space, dropping it loses data.
    """
    reason = error.name().lstrip("_").lower() or f"code_{error.code()}"
    if error.fatal():
        return DeliveryFailure(reason=reason, retriable=True, fatal=True)
    return DeliveryFailure(reason=reason, retriable=error.code() not in _PERMANENT)


class KafkaTransport:
    """`Transport` over a confluent-kafka `Producer` for one topic."""

    def __init__(self, config: Mapping[str, ConfigValue], topic: str) -> None:
        self._producer = Producer(dict(config))
        self._topic = topic
        self._rejected: list[tuple[DeliveryCallback, DeliveryFailure]] = []

    def produce(
        self,
        key: bytes | None,
        value: bytes,
        headers: Sequence[Header],
        on_delivery: DeliveryCallback,
    ) -> None:
        """Queue one record. Raises BufferError when librdkafka's queue is full;
        a record librdkafka refuses outright fails through its callback at the
        next `poll`."""

        def deliver(error: KafkaError | None, _message: Message) -> None:
            on_delivery(None if error is None else classify(error))

        try:
            self._producer.produce(
                self._topic, value=value, key=key, headers=list(headers), on_delivery=deliver
            )
        except KafkaException as err:
            self._rejected.append((on_delivery, classify(_kafka_error(err))))

    def poll(self, timeout: float) -> int:
        """Serve callbacks, waiting up to `timeout` s. Returns how many ran."""
        return self._serve_rejected() + int(self._producer.poll(timeout))

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` s for delivery. Returns records still queued."""
        self._serve_rejected()
        return int(self._producer.flush(timeout))

    def purge(self) -> None:
        """Abandon queued and in-flight records; their callbacks run (with a
        retriable `purge_queue`/`purge_inflight` failure) before returning."""
        self._serve_rejected()
        self._producer.purge(in_queue=True, in_flight=True, blocking=True)
        self._producer.flush(0)
        self._producer.poll(0)

    def _serve_rejected(self) -> int:
        rejected, self._rejected = self._rejected, []
        for callback, failure in rejected:
            callback(failure)
        return len(rejected)


def _kafka_error(err: KafkaException) -> KafkaError:
    first: Any = err.args[0] if err.args else None
    if isinstance(first, KafkaError):
        return first
    return KafkaError(KafkaError._FAIL, str(err))
