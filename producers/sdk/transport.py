"""The port between the SDK's routing logic and a Kafka producer.

`SpoolingPublisher` talks to a `Transport`; `producers.sdk.kafka_transport` is the
confluent-kafka implementation and unit tests use an in-memory one. A
transport is bound to one topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from producers.sdk.spool_frame import Header


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """Why the broker did not take one record.

    `reason` is a short snake_case name (a metric label). `retriable` means the
    same record may succeed later, so it is kept (spooled) rather than dropped.
    `fatal` means the transport itself is unusable and must be replaced.
    """

    reason: str
    retriable: bool
    fatal: bool = False


DeliveryCallback = Callable[[DeliveryFailure | None], None]
"""Called once per produced record: None on success, else the failure."""


class Transport(Protocol):
    """A producer of records to one topic."""

    def produce(
        self,
        key: bytes | None,
        value: bytes,
        headers: Sequence[Header],
        on_delivery: DeliveryCallback,
    ) -> None:
        """Queue one record; `on_delivery` runs later from `poll`/`flush`/`purge`.

        Raises BufferError when the local queue is full (nothing queued).
        """

    def poll(self, timeout: float) -> int:
        """Serve delivery callbacks, waiting up to `timeout` s; returns how many ran."""

    def flush(self, timeout: float) -> int:
        """Wait up to `timeout` s for queued records; returns how many are left."""

    def purge(self) -> None:
        """Abandon every queued and in-flight record and run their callbacks
        with a retriable failure before returning."""
