"""The capture SDK: `CaptureClient` publishes capture events to Kafka.

A client serves one device of one subject. `capture` stamps a payload into
an envelope (`producers.envelope`), encodes it with the shared Avro codec and
hands it to `SpoolingPublisher`, which sends it with an idempotent, acks=all,
compressed producer keyed by device_id, or spools it on disk while the broker
is unreachable and replays it later (see `producers.publisher` for the rules).

The spool directory holds the spool segments, its cursor and the device's
sequence file; give each device its own directory.

No background thread: delivery callbacks, spooling and replay run inside
`capture`/`publish` (each ends with `poll(0)`), `poll`, `flush` and `close`.
An application that goes quiet while events are spooled should call
`poll()` now and then so the spool drains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from producers.envelope import EnvelopeBuilder, Event, new_event_id, now_micros
from producers.errors import ClientClosed
from producers.kafka_transport import (
    DEFAULT_MESSAGE_TIMEOUT_MS,
    ConfigValue,
    KafkaTransport,
    producer_config,
)
from producers.metrics import ProducerMetrics
from producers.publisher import SpoolingPublisher
from producers.sequence import DeviceSequence
from producers.spool import DEFAULT_MAX_BYTES, FsyncPolicy, Spool
from producers.transport import Transport

DEFAULT_TOPIC = "capture.events"
SEQUENCE_FILE = "sequence.json"

Encoder = Callable[[Event], bytes]


def _codec_encoder() -> Encoder:
    # Imported late so the SDK's routing can be used (and tested) with another encoder.
    from schemas.codec import encode_event

    encoder: Encoder = encode_event
    return encoder


class CaptureClient:
    """Publishes one device's capture events; a context manager that closes itself.

    `producer_config` entries override the librdkafka defaults of
    `producers.kafka_transport.producer_config`. `transport_factory` replaces
    the Kafka producer (tests); `encoder` replaces `schemas.codec.encode_event`.
    Opening raises `SpoolLocked` if another client uses `spool_dir`.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        spool_dir: Path,
        org_id: str,
        subject_id: str,
        device_id: str,
        topic: str = DEFAULT_TOPIC,
        producer_config: Mapping[str, ConfigValue] | None = None,
        registry: CollectorRegistry | None = None,
        message_timeout_ms: int = DEFAULT_MESSAGE_TIMEOUT_MS,
        spool_max_bytes: int = DEFAULT_MAX_BYTES,
        spool_fsync: FsyncPolicy = "always",
        replay_window: int = 1000,
        retry_backoff_s: float = 1.0,
        transport_factory: Callable[[], Transport] | None = None,
        encoder: Encoder | None = None,
        clock: Callable[[], int] = now_micros,
        new_id: Callable[[], str] = new_event_id,
    ) -> None:
        config = _merge_config(bootstrap, device_id, message_timeout_ms, producer_config)

        def kafka() -> Transport:
            return KafkaTransport(config, topic)

        self._encode = encoder if encoder is not None else _codec_encoder()
        spool = Spool(spool_dir, max_bytes=spool_max_bytes, fsync=spool_fsync)
        try:
            self._envelopes = EnvelopeBuilder(
                org_id=org_id,
                subject_id=subject_id,
                device_id=device_id,
                sequence=DeviceSequence(spool_dir / SEQUENCE_FILE, fsync=spool_fsync != "never"),
                clock=clock,
                new_id=new_id,
            )
            self._publisher = SpoolingPublisher(
                transport_factory or kafka,
                spool,
                ProducerMetrics.on(registry),
                replay_window=replay_window,
                retry_backoff_s=retry_backoff_s,
            )
        except BaseException:
            spool.close()
            raise
        self._closed = False

    @property
    def pending(self) -> int:
        """Events accepted and not yet acknowledged by the broker."""
        return self._publisher.pending

    @property
    def spool_depth(self) -> int:
        """Events waiting in the disk spool."""
        return self._publisher.spool_depth

    def capture(
        self, payload: Mapping[str, Any], app: Mapping[str, Any], ts: int | None = None
    ) -> str:
        """Stamp `payload` (seen in `app` at `ts`, now if None) into an envelope
        and publish it. Returns its event_id. Raises `EnvelopeError`,
        `schemas.errors.SchemaError` for a payload the contract refuses, or
        `SpoolFull` when the broker is unreachable and the spool is full."""
        event = self._envelopes.build(payload, app, ts=ts)
        self.publish(event)
        return str(event["event_id"])

    def publish(self, event: Event) -> None:
        """Encode and publish a complete envelope (keyed by its device_id).
        Never blocks on the network. Raises like `capture`."""
        self._check_open()
        value = self._encode(event)
        self._publisher.publish(str(event["device_id"]).encode(), value)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks and replay the spool; waits up to `timeout` s."""
        self._check_open()
        return self._publisher.poll(timeout)

    def flush(self, timeout: float = 10.0) -> int:
        """Block up to `timeout` s until every accepted event is delivered
        (spool included). Returns how many are still undelivered."""
        self._check_open()
        return self._publisher.flush(timeout)

    def close(self, timeout: float = 10.0) -> int:
        """Flush for up to `timeout` s, spool whatever is still undelivered and
        release the spool. Returns the events left in the spool for the next
        start. Idempotent (a second close returns 0)."""
        if self._closed:
            return 0
        self._closed = True
        return self._publisher.close(timeout)

    def __enter__(self) -> CaptureClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("CaptureClient is closed")


def _merge_config(
    bootstrap: str,
    device_id: str,
    message_timeout_ms: int,
    overrides: Mapping[str, ConfigValue] | None,
) -> dict[str, ConfigValue]:
    return producer_config(
        bootstrap,
        client_id=f"candor-capture-{device_id}",
        message_timeout_ms=message_timeout_ms,
        overrides=overrides,
    )
