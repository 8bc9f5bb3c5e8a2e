"""Publishing a worker's outputs with librdkafka, flushed once per batch.

Faust commits a batch's source offsets only after our agent has finished with
the batch; `flush()` waits for every record of the batch to be acknowledged
(acks=all, idempotent), so a batch is acked only when its outputs are durable —
at-least-once, with duplicates removed downstream by deterministic ids.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError, Message, Producer


class OutputFailed(RuntimeError):
    """Records of this batch were not acknowledged; the batch must not be acked."""


class OutputProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer({
            **config,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 1_000_000,
            # Java-compatible key hashing: faust writes table changelogs with the
            # same partitioner, so state stays co-partitioned with its input.
            "partitioner": "murmur2_random",
        })
        self._errors: list[str] = []
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def send(self, topic: str, key: bytes | str | None, value: bytes | None,
             headers: list[tuple[str, str | bytes | None]] | None = None) -> None:
        """Queue one record; blocks briefly (poll) only when the local queue is full."""
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers,
                                       on_delivery=self._on_delivery)
                break
            except BufferError:
                self._producer.poll(0.05)
        self.sent += 1
        if self.sent % 1000 == 0:
            self._producer.poll(0)

    async def flush(self, timeout: float = 60.0) -> None:
        """Wait (off the event loop) until everything queued is acknowledged.

        Raises OutputFailed on a delivery error or when records remain after `timeout`."""
        remaining = await asyncio.get_running_loop().run_in_executor(
            None, self._producer.flush, timeout)
        if self._errors or remaining:
            errors, self._errors = self._errors, []
            raise OutputFailed(f"{remaining} records unflushed; errors: {errors[:5]}")

    def close(self) -> None:
        self._producer.flush(30)
