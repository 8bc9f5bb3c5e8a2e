"""The capture SDK: `CaptureClient` publishes capture events to Kafka.

A client serves one device of one subject. `capture` stamps a payload into
an envelope (`producers.sdk.envelope`) and encodes it with the shared Avro codec
(so a payload the contract refuses fails right there). Events then wait in
the device's open batch, which becomes one `DeviceBatch` record
(`schemas.batch`) when it is ``linger_ms`` old, holds ``batch_max_events``
events, would outgrow ``batch_max_bytes``, or on `flush`/`close`. A batch
holds one device's events in increasing seq order (an event whose seq is not
above the open batch's last one closes it and opens the next). The record
goes to `SpoolingPublisher`, which sends it with an idempotent, acks=all,
compressed producer keyed by device_id, or spools it on disk while the broker
is unreachable and replays it later, unchanged (see `producers.sdk.publisher` for
the rules). `publish` takes complete envelopes of any device and batches them
per device the same way.

Counts (`pending`, `spool_depth`, what `flush` and `close` return, the
producer metrics) are in records: one per device batch, an open batch counting
as one.

The spool directory holds the spool segments, its cursor and the device's
sequence file; give each device its own directory.

No background thread: delivery callbacks, closing lingering batches,
spooling and replay run inside `capture`/`publish` (each ends with
`poll(0)`), `poll`, `flush` and `close`. An application that goes quiet
should call `poll()` at least every ``linger_ms`` so its last events leave
(and the spool drains); `close` sends whatever is still open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from producers.sdk.envelope import EnvelopeBuilder, Event, new_event_id
from producers.sdk.errors import ClientClosed, SpoolFull
from producers.sdk.kafka_transport import (
    DEFAULT_MESSAGE_TIMEOUT_MS,
    ConfigValue,
    KafkaTransport,
    producer_config,
)
from producers.sdk.metrics import ProducerMetrics
from producers.sdk.publisher import SpoolingPublisher
from producers.sdk.sequence import DeviceSequence
from producers.sdk.spool import DEFAULT_MAX_BYTES, FsyncPolicy, Spool
from producers.sdk.transport import Transport
from schemas.clock import now_micros
from schemas.topics import Topic

DEFAULT_TOPIC = Topic.CAPTURE_EVENTS
SEQUENCE_FILE = "sequence.json"
#: How long the first event of a batch waits for company at most.
DEFAULT_LINGER_MS = 250.0
DEFAULT_BATCH_MAX_EVENTS = 500
#: Encoded events per batch at most (well under the readers' 1 MiB record limit).
DEFAULT_BATCH_MAX_BYTES = 256 * 1024

_log = logging.getLogger(__name__)

Encoder = Callable[[Event], bytes]
#: Builds one record from a batch header (`schemas.batch.HEADER_FIELDS`) and its encoded events.
BatchEncoder = Callable[[Mapping[str, Any], Sequence[bytes]], bytes]


def _codec_encoder() -> Encoder:
    # Imported late so the SDK's routing can be used (and tested) with another encoder.
    from schemas.codec import encode_event

    encoder: Encoder = encode_event
    return encoder


def _codec_batch_encoder() -> BatchEncoder:
    from schemas.batch import splice_batch

    def encode(header: Mapping[str, Any], events: Sequence[bytes]) -> bytes:
        return splice_batch(header, events)

    return encode


@dataclass(slots=True)
class _OpenBatch:
    """Encoded events of one device waiting to leave as one record."""

    opened: float  # monotonic seconds
    org_id: str
    subject_id: str
    device_id: str
    values: list[bytes] = field(default_factory=list)
    first_seq: int = 0
    last_seq: int = -1
    size: int = 0


class CaptureClient:
    """Publishes one device's capture events; a context manager that closes itself.

    `producer_config` entries override the librdkafka defaults of
    `producers.sdk.kafka_transport.producer_config`. ``linger_ms``,
    ``batch_max_events`` and ``batch_max_bytes`` bound a device batch (see the
    module docstring); ``client_version`` goes into each batch header.
    `transport_factory` replaces the Kafka producer (tests); `encoder` replaces
    `schemas.codec.encode_event` and `batch_encoder` `schemas.batch.splice_batch`
    (the two go together); `monotonic` is the linger clock (seconds).
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
        linger_ms: float = DEFAULT_LINGER_MS,
        batch_max_events: int = DEFAULT_BATCH_MAX_EVENTS,
        batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES,
        client_version: str | None = None,
        batch_encoder: BatchEncoder | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if linger_ms < 0 or batch_max_events < 1 or batch_max_bytes < 1:
            raise ValueError("linger_ms must be >= 0, the batch limits >= 1")
        config = _merge_config(bootstrap, device_id, message_timeout_ms, producer_config)

        def kafka() -> Transport:
            return KafkaTransport(config, topic)

        self._encode = encoder if encoder is not None else _codec_encoder()
        self._encode_batch = batch_encoder if batch_encoder is not None else _codec_batch_encoder()
        self._linger_s = linger_ms / 1000.0
        self._max_events = batch_max_events
        self._max_bytes = batch_max_bytes
        self._client_version = client_version
        self._clock = clock
        self._monotonic = monotonic
        self._new_batch_id = new_id
        # Oldest first: a batch is added when opened and removed when sent.
        self._open: dict[tuple[str, str, str], _OpenBatch] = {}
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
        """Records accepted and not yet acknowledged by the broker: open
        batches, in flight, held and spooled."""
        return len(self._open) + self._publisher.pending

    @property
    def spool_depth(self) -> int:
        """Records (device batches) waiting in the disk spool."""
        return self._publisher.spool_depth

    @property
    def open_events(self) -> int:
        """Events waiting in open batches (not yet handed to the producer)."""
        return sum(len(batch.values) for batch in self._open.values())

    def capture(
        self, payload: Mapping[str, Any], app: Mapping[str, Any], ts: int | None = None
    ) -> str:
        """Stamp `payload` (seen in `app` at `ts`, now if None) into an envelope
        and publish it. Returns its event_id. Raises `EnvelopeError`,
        `schemas.errors.SchemaError` for a payload the contract refuses, or
        `SpoolFull` when the broker is unreachable and the spool is full (the
        event is then not accepted)."""
        event = self._envelopes.build(payload, app, ts=ts)
        self.publish(event)
        return str(event["event_id"])

    def publish(self, event: Event) -> None:
        """Encode a complete envelope and add it to its device's open batch,
        sending the batch when it is full and any batch past its linger.
        Never blocks on the network. Raises like `capture`."""
        self._check_open()
        value = self._encode(event)
        identity = (str(event["org_id"]), str(event["subject_id"]), str(event["device_id"]))
        seq = int(event["seq"])
        now = self._monotonic()
        batch = self._open.get(identity)
        if batch is not None and (
            len(batch.values) >= self._max_events
            or batch.size + len(value) > self._max_bytes
            or seq <= batch.last_seq
        ):
            self._send(identity)  # SpoolFull: this event is not accepted
            batch = None
        if batch is None:
            batch = self._open[identity] = _OpenBatch(now, *identity, first_seq=seq)
        batch.values.append(value)
        batch.last_seq = seq
        batch.size += len(value)
        if len(batch.values) >= self._max_events:
            try:
                self._send(identity)
            except SpoolFull:
                batch.values.pop()  # not accepted; the rest stays open
                batch.size -= len(value)
                if not batch.values:
                    del self._open[identity]
                raise
        self._send_lingering(now)
        self._publisher.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Send batches past their linger, serve delivery callbacks and replay
        the spool; waits up to `timeout` s."""
        self._check_open()
        self._send_lingering(self._monotonic())
        return self._publisher.poll(timeout)

    def flush(self, timeout: float = 10.0) -> int:
        """Send every open batch and block up to `timeout` s until every
        record is delivered (spool included). Returns how many records are
        still undelivered."""
        self._check_open()
        deadline = self._monotonic() + timeout
        self._send_all()
        left = self._publisher.flush(timeout)
        if self._open:  # refused by a full spool: try again once the spool drained
            self._send_all()
            left = self._publisher.flush(max(0.0, deadline - self._monotonic()))
        return len(self._open) + left

    def close(self, timeout: float = 10.0) -> int:
        """Send the open batches, flush for up to `timeout` s, spool whatever
        is still undelivered and release the spool. Returns the records left
        in the spool for the next start. Idempotent (a second close returns 0)."""
        if self._closed:
            return 0
        self._closed = True
        self._send_all()
        if self._open:
            lost = sum(len(batch.values) for batch in self._open.values())
            _log.error("spool full at close: %d captured events not kept", lost)
        return self._publisher.close(timeout)

    def _send(self, identity: tuple[str, str, str]) -> None:
        """Hand the open batch of `identity` to the publisher as one record.
        Raises `SpoolFull` (the batch then stays open)."""
        batch = self._open[identity]
        header = {
            "batch_id": self._new_batch_id(),
            "org_id": batch.org_id,
            "subject_id": batch.subject_id,
            "device_id": batch.device_id,
            "client_version": self._client_version,
            "sent_ts": self._clock(),
            "first_seq": batch.first_seq,
            "last_seq": batch.last_seq,
        }
        value = self._encode_batch(header, batch.values)
        self._publisher.publish(batch.device_id.encode(), value)
        del self._open[identity]

    def _send_lingering(self, now: float) -> None:
        while self._open:
            identity, batch = next(iter(self._open.items()))
            if now - batch.opened < self._linger_s:
                return
            try:
                self._send(identity)
            except SpoolFull:
                return  # stays open; the publisher counted the refusal

    def _send_all(self) -> None:
        for identity in list(self._open):
            try:
                self._send(identity)
            except SpoolFull:
                return

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
