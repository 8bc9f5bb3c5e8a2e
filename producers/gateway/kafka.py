"""Kafka delivery for the HTTP gateway: awaitable, acknowledged sends.

`AsyncDelivery.send(records)` produces the accepted events of one request as
one `DeviceBatch` record per device (`producers.gateway.batch.device_batches`)
with an idempotent, acks=all confluent-kafka producer and returns once every
record has a delivery report, so the gateway answers a client only when its
events are durable in Kafka. A daemon thread calls `poll` (librdkafka runs the
delivery callbacks there) and each callback resolves its asyncio future
through `loop.call_soon_threadsafe`. The producer is thread-safe, so
`produce` is called from the event loop and `poll` from the thread.

The gateway keeps no spool: a batch that is not acknowledged within
`message.timeout.ms` fails, the client gets a 503 and retries it (same
event_ids, deduplicated downstream).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import KafkaError, Message, Producer

from producers.gateway.batch import Record, device_batches
from producers.gateway.errors import Unavailable
from producers.sdk.kafka_transport import ConfigValue, classify, producer_config
from schemas.clock import now_micros

DEFAULT_TIMEOUT_MS = 10_000


def gateway_producer_config(
    bootstrap: str, overrides: Mapping[str, ConfigValue] | None = None
) -> dict[str, ConfigValue]:
    """The capture producer's settings (idempotent, acks=all, zstd) with a
    short linger (a client is waiting) and a 10 s delivery timeout."""
    base: dict[str, ConfigValue] = {"linger.ms": 2, "client.id": "candor-gateway"}
    base.update(overrides or {})
    return producer_config(bootstrap, message_timeout_ms=DEFAULT_TIMEOUT_MS, overrides=base)


class AsyncDelivery:
    """Sends records to `topic` and awaits their acknowledgement.

    Create inside the running loop; `close` flushes and stops the poll thread.
    """

    def __init__(
        self,
        config: Mapping[str, ConfigValue],
        topic: str,
        *,
        clock: Callable[[], int] = now_micros,
        new_batch_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._producer = Producer(dict(config))
        self._topic = topic
        self._clock = clock
        self._new_batch_id = new_batch_id
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_forever, name="gateway-poll", daemon=True)
        self._thread.start()

    async def send(self, records: Sequence[Record]) -> None:
        """Produce the events `records` (one request's accepted events) as one
        DeviceBatch record per device, keyed by it, and wait until Kafka
        acknowledged all of them. Raises `Unavailable` ("queue_full" when the
        local queue cannot take the batch, or the delivery error's reason,
        e.g. "msg_timed_out") if any one was not acknowledged: the request as
        a whole is then unconfirmed and the client must resend it."""
        batches = device_batches(records, new_batch_id=self._new_batch_id, sent_ts=self._clock())
        futures: list[asyncio.Future[KafkaError | None]] = []
        for record in batches:
            future: asyncio.Future[KafkaError | None] = self._loop.create_future()
            try:
                self._producer.produce(
                    self._topic,
                    value=record.value,
                    key=record.key,
                    on_delivery=self._resolver(future),
                )
            except BufferError:
                future.cancel()
                if futures:
                    await asyncio.gather(*futures)  # let what was queued settle
                raise Unavailable("queue_full", "the gateway's Kafka queue is full") from None
            futures.append(future)
        errors = await asyncio.gather(*futures)
        failed = [error for error in errors if error is not None]
        if failed:
            reason = classify(failed[0]).reason
            raise Unavailable(
                reason, f"{len(failed)} of {len(batches)} device batches not acknowledged"
            )

    def _resolver(
        self, future: asyncio.Future[KafkaError | None]
    ) -> Callable[[KafkaError | None, Message], None]:
        loop = self._loop

        def settle(value: KafkaError | None) -> None:
            if not future.done():
                future.set_result(value)

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            loop.call_soon_threadsafe(settle, error)

        return on_delivery

    def _poll_forever(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def close(self, timeout: float = 10.0) -> int:
        """Flush for up to `timeout` s and stop polling. Blocks. Returns the
        records still unacknowledged (their clients get no answer and retry)."""
        left = int(self._producer.flush(timeout))
        self._stop.set()
        self._thread.join()
        return left
