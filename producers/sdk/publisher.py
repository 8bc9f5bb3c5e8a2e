"""Routing of records between the broker and the disk spool.

`SpoolingPublisher` decides, for every record, whether it goes straight to
the `Transport` or to the `Spool`, and replays the spool when the broker is
back. It is the part of the capture SDK that holds the delivery guarantees,
and it imports no Kafka client, so it is unit-tested with an in-memory
transport.

Rules:

* **Direct** while the spool is empty: records are produced to the transport.
* **Diverted** otherwise: a record the transport refuses (BufferError: local
  queue full) or that comes back with a retriable delivery failure (timeout,
  broker down, purge at close) is spooled, and while the spool holds anything,
  new records go to the spool too, so they stay behind the older ones.
* **Held**: while directly produced records are still in flight, diverted new
  records wait in memory and are spooled only after every in-flight record
  has settled, because an in-flight record that fails is older and must land
  in the spool first. (They are as volatile as the transport's own queue.)
* **Replay** runs from `poll`: up to `replay_window` spooled records are in
  flight at once; the spool cursor advances only over a contiguous prefix of
  delivered records. After a failure the unfinished replay restarts from the
  cursor after `retry_backoff_s`, so records after the failed one may be sent
  twice. Duplicates carry the same `event_id`, and the pipeline dedups on it:
  delivery is at-least-once, never at-most-once.
* A non-retriable failure (e.g. message too large) drops the record with a
  `candor_producer_events_dropped_total{reason}` count; keeping it would block
  the spool forever. A fatal failure replaces the transport.

Ordering: per key, records reach the broker in publish order, except that a
record that failed directly while later records of the same key were
delivered is re-sent after them (idempotent producers make this rare); the
envelope's `seq` lets consumers restore the order.

Single-threaded: call `publish`, `poll`, `flush` and `close` from one thread.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial

from producers.sdk.errors import SpoolFull
from producers.sdk.metrics import ProducerMetrics
from producers.sdk.spool import Spool, SpoolPosition
from producers.sdk.spool_frame import Header, SpoolRecord
from producers.sdk.transport import DeliveryFailure, Transport

_log = logging.getLogger(__name__)

QUEUE_FULL = "queue_full"
SPOOL_FULL = "spool_full"


class _Outcome(Enum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class _Replayed:
    position: SpoolPosition
    outcome: _Outcome = _Outcome.PENDING


class SpoolingPublisher:
    """Publishes records through a transport, spooling what it cannot deliver.

    `transport_factory` is called once now and again after a fatal failure.
    `clock` is a monotonic clock in seconds (injected by tests).
    """

    def __init__(
        self,
        transport_factory: Callable[[], Transport],
        spool: Spool,
        metrics: ProducerMetrics,
        *,
        replay_window: int = 1000,
        retry_backoff_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if replay_window < 1:
            raise ValueError("replay_window must be >= 1")
        self._factory = transport_factory
        self._transport = transport_factory()
        self._spool = spool
        self._metrics = metrics
        self._replay_window = replay_window
        self._retry_backoff_s = retry_backoff_s
        self._clock = clock
        self._direct_inflight = 0
        self._held: list[SpoolRecord] = []
        self._failed: list[SpoolRecord] = []
        self._replaying: deque[_Replayed] = deque()
        self._replay_pending = 0
        self._replay_failed = False
        self._replay_next: SpoolPosition | None = None
        self._retry_at = 0.0
        self._needs_reset = False
        self._closing = False
        self._gauged: tuple[int, int] | None = None
        self._update_gauges()

    # -- public --------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records accepted but not yet delivered (in flight, held or spooled)."""
        return self._direct_inflight + len(self._held) + len(self._failed) + self._spool.depth

    @property
    def spool_depth(self) -> int:
        """Records in the spool, including replayed ones not yet acknowledged."""
        return self._spool.depth

    def publish(self, key: bytes | None, value: bytes, headers: Sequence[Header] = ()) -> None:
        """Accept one record for delivery, then serve callbacks (`poll(0)`).

        Never blocks on the network. Raises `SpoolFull` if the record had to
        be spooled and the spool is over its bound: the record is then not
        accepted. Blocks for an fsync when spooling under fsync "always".
        """
        record = SpoolRecord(value=value, key=key, headers=tuple(headers))
        if self._direct_allowed():
            try:
                self._transport.produce(
                    key, value, record.headers, partial(self._on_direct, record)
                )
            except BufferError:
                self._metrics.delivery_errors.labels(reason=QUEUE_FULL).inc()
                self._divert(record)
            else:
                self._direct_inflight += 1
        else:
            self._divert(record)
        self.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery callbacks (waiting up to `timeout` s), spool what
        failed, ack what was delivered and replay more of the spool.
        Returns the number of callbacks served."""
        served = self._transport.poll(timeout)
        self._settle()
        return served

    def flush(self, timeout: float) -> int:
        """Deliver everything accepted so far, replaying the spool, for up to
        `timeout` s. Blocks. Returns the records still undelivered (0 = all)."""
        deadline = self._clock() + timeout
        while True:
            self.poll(0)
            remaining = self.pending
            left = deadline - self._clock()
            if remaining == 0 or left <= 0:
                return remaining
            self.poll(min(left, 0.1))

    def close(self, timeout: float) -> int:
        """Flush for up to `timeout` s, then move everything still undelivered
        into the spool (purging the transport) and close the spool. Returns
        how many records the spool holds for the next start."""
        self.flush(timeout)
        self._closing = True
        self._transport.purge()
        self._settle()
        left = self._spool.depth
        self._spool.close()
        return left

    # -- routing -------------------------------------------------------------

    def _direct_allowed(self) -> bool:
        return not (self._spool.depth or self._held or self._failed or self._needs_reset)

    def _divert(self, record: SpoolRecord) -> None:
        if self._direct_inflight:
            self._held.append(record)
            return
        try:
            self._spool.append([record])
        except SpoolFull:
            self._metrics.events_dropped.labels(reason=SPOOL_FULL).inc()
            raise
        self._metrics.events_spooled.inc()
        self._update_gauges()

    def _on_direct(self, record: SpoolRecord, failure: DeliveryFailure | None) -> None:
        self._direct_inflight -= 1
        if failure is None:
            self._metrics.events_sent.inc()
            return
        self._metrics.delivery_errors.labels(reason=failure.reason).inc()
        self._needs_reset |= failure.fatal
        if failure.retriable or failure.fatal:
            self._failed.append(record)
        else:
            self._drop(failure.reason)

    def _on_replayed(self, entry: _Replayed, failure: DeliveryFailure | None) -> None:
        self._replay_pending -= 1
        if failure is None:
            self._metrics.events_sent.inc()
            entry.outcome = _Outcome.DONE
            return
        self._metrics.delivery_errors.labels(reason=failure.reason).inc()
        self._needs_reset |= failure.fatal
        if failure.retriable or failure.fatal:
            entry.outcome = _Outcome.FAILED
            self._replay_failed = True
        else:
            self._drop(failure.reason)
            entry.outcome = _Outcome.DONE  # acked: a record that can never succeed must not block

    def _drop(self, reason: str) -> None:
        _log.warning("dropping a capture record: non-retriable delivery failure %s", reason)
        self._metrics.events_dropped.labels(reason=reason).inc()

    # -- settling ------------------------------------------------------------

    def _settle(self) -> None:
        if self._needs_reset and not self._closing:
            self._reset_transport()
        self._spool_failed()
        self._advance_acks()
        self._replay_more()
        self._update_gauges()

    def _reset_transport(self) -> None:
        _log.warning("replacing the Kafka producer after a fatal error")
        self._transport.purge()
        self._transport = self._factory()
        self._needs_reset = False

    def _spool_failed(self) -> None:
        batch = self._failed
        self._failed = []
        if not self._direct_inflight and self._held:
            batch += self._held
            self._held = []
        if not batch:
            return
        try:
            self._spool.append(batch)
            self._metrics.events_spooled.inc(len(batch))
            return
        except SpoolFull:
            pass
        for count, record in enumerate(batch):  # keep the oldest prefix that fits
            try:
                self._spool.append([record])
            except SpoolFull:
                lost = len(batch) - count
                _log.error("spool full: dropping %d undelivered capture records", lost)
                self._metrics.events_dropped.labels(reason=SPOOL_FULL).inc(lost)
                return
            self._metrics.events_spooled.inc()

    def _advance_acks(self) -> None:
        last: SpoolPosition | None = None
        while self._replaying and self._replaying[0].outcome is _Outcome.DONE:
            last = self._replaying.popleft().position
        if last is not None:
            self._spool.ack(last)
        if self._replay_failed and self._replay_pending == 0:
            # Restart from the cursor: what failed (and anything after it) goes again.
            self._replaying.clear()
            self._replay_failed = False
            self._replay_next = None
            self._retry_at = self._clock() + self._retry_backoff_s

    def _replay_more(self) -> None:
        if (
            self._closing
            or self._needs_reset
            or self._replay_failed
            or self._direct_inflight
            or not self._spool.depth
            or self._clock() < self._retry_at
        ):
            return
        room = self._replay_window - len(self._replaying)
        with contextlib.closing(self._spool.replay(self._replay_next)) as records:
            for position, record in itertools.islice(records, room):
                entry = _Replayed(position)
                try:
                    self._transport.produce(
                        record.key, record.value, record.headers, partial(self._on_replayed, entry)
                    )
                except BufferError:
                    return
                self._replaying.append(entry)
                self._replay_pending += 1
                self._replay_next = position

    def _update_gauges(self) -> None:
        # Runs after every publish: set the gauges only when the spool changed
        # (a prometheus Gauge.set takes a lock; two per event were a quarter
        # of the SDK's own cost on the hot path).
        state = (self._spool.depth, self._spool.disk_bytes)
        if state != self._gauged:
            self._gauged = state
            self._metrics.spool_depth.set(state[0])
            self._metrics.spool_bytes.set(state[1])
