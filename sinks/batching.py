"""Batches of one partition, and the boundaries that make a replay form the same batch. Pure.

Exactly-once hinges on one property: a batch inserted before a crash and
replayed after it carries the same ``insert_deduplication_token``
(``topic:partition:first-last``), so ClickHouse drops the replay. Batches are
cut by size (``max_rows``) and by age (``max_age`` seconds), and an age cut
depends on timing: the replay could read further than the original before
its clock runs out, and form ``first-later`` instead of ``first-last``.

Choice: *persist the boundary before the insert.* Before inserting a batch,
the consumer commits the batch's *first* offset (the position it already
committed) with the Kafka commit metadata ``candor-sink:v1:<first>-<last>``
(`intent_metadata`). After the insert it commits ``last + 1`` with empty
metadata. A consumer that is assigned the partition (after a crash, a restart
or a rebalance) reads the committed metadata; when it names a range starting
at the committed offset (`parse_intent`), the first batch is pinned to end
at exactly ``last`` (`Batcher.pin`): no size or age cut, so the replay has
the same token. Why not ``offset // max_rows`` boundaries: they still need an
age cut for a slow partition, and they break as soon as ``max_rows`` changes
between two runs; the intent costs one synchronous commit per batch and
survives any change of settings. The intent lives in the consumer group, so it
moves with the partition to whichever consumer gets it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

INTENT_PREFIX = "candor-sink:v1:"
_INTENT = re.compile(r"^candor-sink:v1:(\d+)-(\d+)$")


def dedup_token(topic: str, partition: int, first: int, last: int, topic_id: str = "") -> str:
    """The ClickHouse ``insert_deduplication_token`` of a batch:
    ``topic@topic_id:partition:first-last`` (``topic:partition:first-last`` while
    the topic's id is unknown). The id matters when a topic is created anew (a
    rebuilt Kafka cluster) while ClickHouse keeps its tables: offsets restart at
    0, and a new batch carrying one of the last tokens ClickHouse remembers
    would be dropped as a replay, silently."""
    name = f"{topic}@{topic_id}" if topic_id else topic
    return f"{name}:{partition}:{first}-{last}"


@dataclass(frozen=True)
class Batch(Generic[T]):
    """Consecutive messages ``first..last`` (offsets, inclusive) of one partition."""

    topic: str
    partition: int
    offsets: tuple[int, ...]
    items: tuple[T, ...]
    reason: str  # "size" | "age" | "pinned" | "flush"
    topic_id: str = ""  # the topic's Kafka id, part of the token when known

    @property
    def first(self) -> int:
        return self.offsets[0]

    @property
    def last(self) -> int:
        return self.offsets[-1]

    @property
    def token(self) -> str:
        return dedup_token(self.topic, self.partition, self.first, self.last, self.topic_id)

    @property
    def commit_offset(self) -> int:
        """The offset to commit once the batch is written: the next one to read."""
        return self.last + 1


def intent_metadata(batch: Batch[T]) -> str:
    """The commit metadata recording that ``batch`` is about to be inserted."""
    return f"{INTENT_PREFIX}{batch.first}-{batch.last}"


def parse_intent(metadata: str | None, committed: int) -> int | None:
    """Return the pinned ``last`` offset when ``metadata`` is an intent starting at ``committed``.

    Anything else (no metadata, foreign metadata, an intent for another
    position) returns None: there is no unfinished batch at that position.
    """
    match = _INTENT.match(metadata or "")
    if match is None or int(match.group(1)) != committed or committed < 0:
        return None
    last = int(match.group(2))
    return last if last >= committed else None


@dataclass
class _Open(Generic[T]):
    offsets: list[int] = field(default_factory=list)
    items: list[T] = field(default_factory=list)
    opened_at: float = 0.0
    pinned_last: int | None = None


class Batcher(Generic[T]):
    """Groups messages of one topic into per-partition batches.

    Not thread-safe; ``now`` is a monotonic clock reading in seconds, passed in.
    """

    def __init__(self, topic: str, max_rows: int = 10_000, max_age: float = 1.0) -> None:
        if max_rows < 1 or max_age <= 0:
            raise ValueError("max_rows must be >= 1 and max_age > 0")
        self.topic = topic
        self.topic_id = ""  # set by the consumer once the broker named it (`dedup_token`)
        self.max_rows = max_rows
        self.max_age = max_age
        self._open: dict[int, _Open[T]] = {}

    def pin(self, partition: int, last: int) -> None:
        """Make the next batch of ``partition`` end exactly at offset ``last``.

        Until a message at or past ``last`` arrives, the batch is cut neither by
        size nor by age. A message past ``last`` (``last`` itself deleted by
        retention) cuts the pinned batch before it.
        """
        self._open.setdefault(partition, _Open()).pinned_last = last

    def add(self, partition: int, offset: int, item: T, now: float) -> list[Batch[T]]:
        """Buffer one message; return the batches this message completed (0, 1 or 2)."""
        state = self._open.setdefault(partition, _Open())
        done: list[Batch[T]] = []
        pinned = state.pinned_last
        if pinned is not None and offset > pinned:
            if state.offsets:
                done.append(self._cut(partition, "pinned"))
            state = self._open.setdefault(partition, _Open())
            state.pinned_last = None
            pinned = None
        if not state.offsets:
            state.opened_at = now
        state.offsets.append(offset)
        state.items.append(item)
        if pinned is not None:
            if offset == pinned:
                done.append(self._cut(partition, "pinned"))
        elif len(state.offsets) >= self.max_rows:
            done.append(self._cut(partition, "size"))
        return done

    def due(self, now: float) -> list[Batch[T]]:
        """Return (and remove) the unpinned batches once one of them is older
        than ``max_age``: that one and every other unpinned open batch.

        Cutting them together keeps the partitions in step: the consumer writes
        them in one round, which shares its two synchronous commits (intents,
        positions), where batches cut one by one each cost a round of their own;
        with 12 partitions and a 0.5 s age that was 24 rounds and 48 commits a
        second however low the rate. A batch cut young is as safe as any: its
        intent pins the replay to the same range."""
        unpinned = [(p, s) for p, s in self._open.items() if s.offsets and s.pinned_last is None]
        if not any(now - s.opened_at >= self.max_age for _, s in unpinned):
            return []
        return [self._cut(p, "age") for p, _ in unpinned]

    def drop(self, partition: int) -> int:
        """Forget ``partition`` (revoked): its buffered messages are re-read by the next owner.

        Returns how many buffered messages were dropped.
        """
        state = self._open.pop(partition, None)
        return len(state.offsets) if state else 0

    def buffered(self) -> int:
        """How many messages are buffered across partitions."""
        return sum(len(s.offsets) for s in self._open.values())

    def _cut(self, partition: int, reason: str) -> Batch[T]:
        state = self._open[partition]
        batch = Batch(
            self.topic, partition, tuple(state.offsets), tuple(state.items), reason, self.topic_id
        )
        self._open[partition] = _Open(pinned_last=None)
        return batch
