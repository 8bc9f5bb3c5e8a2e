"""Dead letters: what a rejected input becomes (the `capture.dlq` contract).

A dead letter keeps the original bytes and says why, in Kafka headers
(`reason`, `error`, `original_topic`, `original_partition`, `original_offset`;
the sinks add `sink_table`). One event refused out of a `DeviceBatch` record
is dead-lettered alone: its value is that event as a single `CaptureEvent`
record, and the headers add `batch_id` and `event_index` (0-based, in the
record) beside the record's coordinates. The lost end of a `DeviceBatch`
(cut off, or past the size limits; `schemas.batch.LostEvents`) is one dead
letter whose value is the whole record, with `batch_id`, `lost_from_index`
(the first event not kept, 0-based), `lost_count` (how many the record
announced from there, when it says) and `lost_seqs` (``first-last``, when
known) in the headers: the events before `lost_from_index` went on.
A value over `MAX_VALUE_BYTES` (an oversize record) is not carried: it would
not fit a record of `capture.dlq` (the producers' and the broker's ~1 MB
default); the dead letter then has no value, says so in its error and
carries the record's size in `value_bytes` (`DeadLetter.capped`).
Stream workers and sinks both dead-letter with
this one record, and the `dead_letters` table is filled from these headers
(`sinks.rows.dead_letter_row` reads them by these names).
Pure: no Kafka imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEADER_REASON = "reason"
HEADER_ERROR = "error"
HEADER_TOPIC = "original_topic"
HEADER_PARTITION = "original_partition"
HEADER_OFFSET = "original_offset"
HEADER_BATCH_ID = "batch_id"
HEADER_EVENT_INDEX = "event_index"
HEADER_LOST_FROM = "lost_from_index"
HEADER_LOST_COUNT = "lost_count"
HEADER_LOST_SEQS = "lost_seqs"
HEADER_VALUE_BYTES = "value_bytes"
HEADER_SINK_TABLE = "sink_table"  # added by a sink that failed to land the input
MAX_ERROR_CHARS = 2000
#: The largest value a dead letter carries: under the ~1 MB record limit of
#: Kafka's producers and brokers by default, with room for the headers.
MAX_VALUE_BYTES = 900_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected input, ready to publish to `capture.dlq` under `key`."""

    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    event_index: int | None = None
    batch_id: str | None = None
    lost_from: int | None = None
    lost_count: int | None = None
    lost_seqs: tuple[int, int] | None = None
    value_bytes: int | None = None  # the size of a value not carried (`capped`)

    @classmethod
    def capped(
        cls,
        reason: str,
        error: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        **more: Any,
    ) -> DeadLetter:
        """A dead letter of ``value``, or of no value when it is over
        `MAX_VALUE_BYTES` (its size then in ``value_bytes`` and the error)."""
        if value is not None and len(value) > MAX_VALUE_BYTES:
            error = f"{error} [value of {len(value)} bytes not kept: over {MAX_VALUE_BYTES}]"
            return cls(
                reason,
                error,
                topic,
                partition,
                offset,
                key,
                None,
                value_bytes=len(value),
                **more,
            )
        return cls(reason, error, topic, partition, offset, key, value, **more)

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        """The Kafka headers saying why and whence (see the module docstring)."""
        headers: list[tuple[str, str | bytes | None]] = [
            (HEADER_REASON, self.reason.encode()),
            (HEADER_ERROR, self.error[:MAX_ERROR_CHARS].encode("utf-8", "replace")),
            (HEADER_TOPIC, self.topic.encode()),
            (HEADER_PARTITION, str(self.partition).encode()),
            (HEADER_OFFSET, str(self.offset).encode()),
        ]
        if self.batch_id is not None:
            headers.append((HEADER_BATCH_ID, self.batch_id.encode("utf-8", "replace")))
        if self.event_index is not None:
            headers.append((HEADER_EVENT_INDEX, str(self.event_index).encode()))
        if self.lost_from is not None:
            headers.append((HEADER_LOST_FROM, str(self.lost_from).encode()))
        if self.lost_count is not None:
            headers.append((HEADER_LOST_COUNT, str(self.lost_count).encode()))
        if self.lost_seqs is not None:
            first, last = self.lost_seqs
            headers.append((HEADER_LOST_SEQS, f"{first}-{last}".encode()))
        if self.value_bytes is not None:
            headers.append((HEADER_VALUE_BYTES, str(self.value_bytes).encode()))
        return headers

    def sink_headers(self, table: str) -> list[tuple[str, str | bytes | None]]:
        """`headers` plus the table a sink failed to land the input in."""
        return [*self.headers(), (HEADER_SINK_TABLE, table.encode())]
