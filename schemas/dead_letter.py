"""Dead letters: what a rejected input becomes, and when rejecting stops the worker.

A dead letter keeps the original bytes and says why, in Kafka headers
(`reason`, `error`, `original_topic`, `original_partition`, `original_offset`;
the sinks add `sink_table`). One event refused out of a `DeviceBatch` record
is dead-lettered alone: its value is that event as a single `CaptureEvent`
record, and the headers add `batch_id` and `event_index` (0-based, in the
record) beside the record's coordinates. Stream workers and sinks both dead-letter with
this one record, and the `dead_letters` table is filled from these headers.
`DlqLimit` is the guard against a bad deploy: when too many
inputs are rejected (a ratio over a sliding window, or too many in a row) the
worker stops with `DlqLimitExceeded` instead of dead-lettering everything.
Pure: no Kafka imports.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

HEADER_REASON = "reason"
HEADER_ERROR = "error"
HEADER_TOPIC = "original_topic"
HEADER_PARTITION = "original_partition"
HEADER_OFFSET = "original_offset"
HEADER_BATCH_ID = "batch_id"
HEADER_EVENT_INDEX = "event_index"
MAX_ERROR_CHARS = 2000


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
        return headers


class DlqLimitExceeded(RuntimeError):
    """Too many inputs were rejected: the worker stops so that a human looks."""


@dataclass
class DlqLimit:
    """Stop when the rejected share of the last `window` inputs exceeds
    `max_invalid_ratio` (once at least `min_observed` were seen), or when
    `max_consecutive` inputs in a row were rejected."""

    max_invalid_ratio: float = 0.5
    max_consecutive: int = 1000
    window: int = 10_000
    min_observed: int = 1000

    def __post_init__(self) -> None:
        self._recent: deque[bool] = deque(maxlen=self.window)
        self._invalid = 0
        self._consecutive = 0

    def observe(self, invalid: bool) -> None:
        """Record one input; raises DlqLimitExceeded when the limit is crossed."""
        if len(self._recent) == self._recent.maxlen and self._recent[0]:
            self._invalid -= 1
        self._recent.append(invalid)
        if invalid:
            self._invalid += 1
            self._consecutive += 1
        else:
            self._consecutive = 0
        if self._consecutive >= self.max_consecutive:
            raise DlqLimitExceeded(
                f"{self._consecutive} consecutive inputs were rejected "
                f"(limit {self.max_consecutive}); stopping instead of dead-lettering everything"
            )
        seen = len(self._recent)
        if seen >= self.min_observed and self._invalid / seen > self.max_invalid_ratio:
            raise DlqLimitExceeded(
                f"{self._invalid} of the last {seen} inputs were rejected "
                f"(ratio {self._invalid / seen:.2f} > {self.max_invalid_ratio}); stopping"
            )
