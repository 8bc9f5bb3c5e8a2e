"""Publishing a worker's outputs with librdkafka, acknowledged per batch.

A batch's source offsets are acked only once its outputs are durable (acks=all,
idempotent): at-least-once, with duplicates removed downstream by
deterministic ids. `checkpoint()` closes the records sent so far into one
`Delivery`, which completes when every one of them is acknowledged, while the
records of the next batch are already being sent (the worker routes batch
N + 1 while batch N's outputs are in flight); `flush()` waits for everything
queued.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer


class OutputFailed(RuntimeError):
    """Records of this batch were not acknowledged; the batch must not be acked."""


class Delivery:
    """The records sent between two checkpoints: done when each is acknowledged.

    Delivery reports are served by whichever thread polls the producer, so
    the count is kept under a lock."""

    __slots__ = ("_lock", "errors", "pending")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending = 0
        self.errors: list[str] = []

    def sent(self) -> None:
        with self._lock:
            self.pending += 1

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        with self._lock:
            self.pending -= 1
            if err is not None:
                self.errors.append(f"{msg.topic()}: {err}")


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
        self._delivery = Delivery()
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

    def send(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """Queue one record; blocks briefly (poll) only when the local queue is full."""
        delivery = self._delivery
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=delivery.on_delivery
                )
                delivery.sent()
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

    def checkpoint(self) -> Delivery:
        """Close the records sent since the last checkpoint into one `Delivery`
        (await it with `delivered`); later records belong to the next one."""
        delivery, self._delivery = self._delivery, Delivery()
        return delivery

    async def delivered(self, delivery: Delivery, timeout: float = 60.0) -> None:
        """Wait (off the event loop) until every record of ``delivery`` is acknowledged.

        Raises OutputFailed on a delivery error of one of them, when the producer
        failed for good, or when records remain after `timeout`."""
        if delivery.pending and not self._fatal:
            await asyncio.get_running_loop().run_in_executor(
                None, self._poll_until_delivered, delivery, time.monotonic() + timeout
            )
        self._raise_if_failed(delivery.pending, delivery.errors)

    def _poll_until_delivered(self, delivery: Delivery, deadline: float) -> None:
        while delivery.pending and not self._fatal and time.monotonic() < deadline:
            self._producer.poll(0.05)

    async def flush(self, timeout: float = 60.0) -> None:
        """Wait (off the event loop) until everything queued is acknowledged.

        Raises OutputFailed on a delivery error or when records remain after `timeout`."""
        remaining = 0
        if not self._fatal:
            remaining = await asyncio.get_running_loop().run_in_executor(
                None, self._producer.flush, timeout
            )
        delivery = self.checkpoint()  # everything sent so far is in this flush
        self._raise_if_failed(remaining, delivery.errors)

    def _raise_if_failed(self, remaining: int, errors: list[str]) -> None:
        if self._fatal:
            self._fatal = False
            self._producer.purge()
            self._producer = self._new_producer()
        if self._errors or errors or remaining:
            errors, self._errors = [*self._errors, *errors], []
            raise OutputFailed(f"{remaining} records unflushed; errors: {errors[:5]}")

    def close(self) -> None:
        self._producer.flush(30)
