"""Publishing a worker's outputs with librdkafka, flushed once per batch.

Faust commits a batch's source offsets only after our agent has finished with
the batch; `flush()` waits for every record of the batch to be acknowledged
(acks=all, idempotent), so a batch is acked only when its outputs are durable —
at-least-once, with duplicates removed downstream by deterministic ids.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer


class OutputFailed(RuntimeError):
    """Records of this batch were not acknowledged; the batch must not be acked."""


class OutputProducer:
    """Idempotent librdkafka producer for a worker's outputs.

    A fatal producer error (e.g. the broker lost the producer's sequence state
    after a crash) poisons an idempotent producer for good: it is replaced by a
    new one, and the batch in flight fails with OutputFailed so that its source
    records are processed again (outputs carry deterministic ids)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._fatal = False
        self._producer = self._new_producer()
        self._errors: list[str] = []
        self.sent = 0

    def _new_producer(self) -> Producer:
        return Producer(
            {
                **self._config,
                "error_cb": self._on_error,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "batch.num.messages": 10000,
                "queue.buffering.max.messages": 1_000_000,
                # Java-compatible key hashing: faust writes table changelogs with the
                # same partitioner, so state stays co-partitioned with its input.
                "partitioner": "murmur2_random",
            }
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = True
            self._errors.append(f"fatal: {err}")

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}: {err}")

    def send(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """Queue one record; blocks briefly (poll) only when the local queue is full."""
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery
                )
                break
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as err:
                if not err.args[0].fatal():
                    raise
                self._fatal = True
                raise OutputFailed(f"producer failed for good: {err}") from err
        self.sent += 1
        if self.sent % 1000 == 0:
            self._producer.poll(0)

    async def flush(self, timeout: float = 60.0) -> None:
        """Wait (off the event loop) until everything queued is acknowledged.

        Raises OutputFailed on a delivery error or when records remain after `timeout`."""
        remaining = 0
        if not self._fatal:
            remaining = await asyncio.get_running_loop().run_in_executor(
                None, self._producer.flush, timeout
            )
        if self._fatal:
            self._fatal = False
            self._producer.purge()
            self._producer = self._new_producer()
        if self._errors or remaining:
            errors, self._errors = self._errors, []
            raise OutputFailed(f"{remaining} records unflushed; errors: {errors[:5]}")

    def close(self) -> None:
        self._producer.flush(30)
