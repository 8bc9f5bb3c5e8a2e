"""Which fetched record of a gap-free topic a worker may hand to its agent, and
how far it may commit. Pure: `streams.transport` drives it from faust's consumer.

faust-streaming 0.15.3 loses records of a partition in two ways (read in its
``transport/consumer.py`` and ``tables/recovery.py``):

- When table recovery ends it resumes the partitions and awaits
  ``perform_seek()``; records fetched before the seek are still being handed
  over meanwhile, the jump back is booked as a *gap* and commits run past gaps.
  Then ``flow_control.resume()`` clears the agents' queues: the records in
  them are never processed, but the read offset has moved past them, so when
  they are fetched again they are dropped as already read.
- Its commit check lets one offset slip: committed 100 with 101-110 acked
  commits 111.
- ``getmany`` drops the records a fetch brought while the flow was suspended
  (a rebalance) and seeks back to the committed offsets; aiokafka seeks only
  to a committed offset above 0, so a partition nothing was committed for
  kept its position past the dropped records and was never read again (a
  worker killed before its first commit, restarted: "stalled").
  `streams.transport.EagerConsumer.perform_seek` seeks such a partition to its
  first record.

For a topic whose producers are idempotent and not transactional (Candor's
``capture.events``) every offset holds a record, so a gap is always a
bookkeeping error. `ReadLedger` keeps, per partition, the next offset the agent
must get (``expected``) and when the partition was last sought: the expected
offset is handed over, whenever it was fetched; an offset below it was handed
over already; one above it means records went missing, so the caller seeks
back instead of handing it over (unless it was fetched before a seek that
brings the missing records anyway: *stale*).
Every change of position the agent did not see (a seek, a cleared queue) goes
through `sought` or `rewind`; a rewind leaves a seek due, so records dropped
from a queue come again even when nothing else is fetched. `committable` never
moves a commit past an offset that was not acknowledged.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What to do with one fetched record."""

    DELIVER = "deliver"  # the next offset the agent needs (or any, before the first)
    SEEN = "seen"  # below the next expected offset: handed over already
    GAP = "gap"  # above the next expected offset: records in between went missing
    STALE = "stale"  # above it too, but fetched before a seek that brings them again


@dataclass
class _Partition:
    expected: int | None = None  # None: no position known yet, take what comes
    sought_at: int = 0  # ledger clock when the last seek of the partition began
    rewound_at: int = 0  # ledger clock of the last rewind


class ReadLedger:
    """Per-partition read positions of one consumer; keys are faust's TPs.

    The clock ticks when a seek begins and at every rewind. The consumer stamps
    each fetch with `clock` just before it asks the broker and passes the stamp
    back with each record of that fetch. After a seek to offset o the fetcher
    brings o, o+1, ... again, so a record above the expected offset that was
    fetched before the seek began is stale, not a gap. A rewind lowers the
    expected offset without repositioning the fetcher, so it leaves a seek to
    do (`seeks_due`): nothing else may bring the dropped records again once
    the backlog is read."""

    def __init__(self) -> None:
        self.clock = 0
        self._parts: dict[Hashable, _Partition] = {}
        self._due: set[Hashable] = set()

    def expected(self, tp: Hashable) -> int | None:
        """The next offset the agent must get, or None when any will do."""
        part = self._parts.get(tp)
        return None if part is None else part.expected

    def verdict(self, tp: Hashable, offset: int, fetched_at: int) -> Verdict:
        part = self._parts.get(tp)
        if part is None or part.expected is None or offset == part.expected:
            return Verdict.DELIVER
        if offset < part.expected:
            return Verdict.SEEN
        return Verdict.STALE if fetched_at < part.sought_at else Verdict.GAP

    def delivered(self, tp: Hashable, offset: int, fetched_at: int) -> None:
        """The agent has the record at `offset` (fetched at `fetched_at`). It
        moves the position only if it was the expected one and no queue was
        cleared since it was fetched (the clear may have dropped it while it
        was being handed over): such a record comes again, and a duplicate is
        harmless where a skipped record is lost."""
        part = self._parts.setdefault(tp, _Partition())
        if (part.expected is None or part.expected == offset) and fetched_at >= part.rewound_at:
            part.expected = offset + 1

    def begin_seek(self) -> int:
        """A seek is about to reposition fetchers: returns its clock for `sought`."""
        self.clock += 1
        return self.clock

    def sought(self, tp: Hashable, offset: int, began: int) -> None:
        """The fetcher of `tp` reads from `offset` now, by a seek begun at `began`."""
        part = self._parts.setdefault(tp, _Partition())
        part.expected, part.sought_at = offset, began
        self._due.discard(tp)

    def rewind(self, tp: Hashable, offset: int) -> None:
        """The record at `offset` was handed over but dropped before the agent
        processed it (a cleared queue): the agent needs it again, and the
        fetcher, which may have moved on, must seek back (`seeks_due`)."""
        part = self._parts.setdefault(tp, _Partition())
        self.clock += 1
        part.rewound_at = self.clock
        if part.expected is None or offset <= part.expected:
            part.expected = offset
            self._due.add(tp)

    def seeks_due(self) -> list[tuple[Hashable, int]]:
        """(partition, offset) of the seeks rewinds left to do."""
        due = []
        for tp in self._due:
            expected = self.expected(tp)
            if expected is not None:
                due.append((tp, expected))
        return due

    def skip_to(self, tp: Hashable, offset: int) -> None:
        """Records below `offset` are gone from the broker (retention): expect `offset`."""
        self._parts.setdefault(tp, _Partition()).expected = offset

    def forget(self, tps: Iterable[Hashable]) -> None:
        """The partitions were revoked."""
        for tp in tps:
            self._parts.pop(tp, None)
            self._due.discard(tp)


def committable(committed: int | None, acked: list[int]) -> tuple[int | None, list[int]]:
    """The offset to commit for one partition (None: commit nothing), and the
    acknowledged offsets that commit covers or leaves behind.

    `committed` is the partition's committed offset (the next one to read;
    None before the first commit), `acked` the acknowledged offsets not yet
    committed. Only a run of consecutive offsets starting at `committed` is
    committable; the run, and any offset already below `committed`, is removed
    from `acked` (sorted in place) and returned. An offset missing from the
    run holds the commit below it, however many offsets above it are
    acknowledged."""
    acked.sort()
    removed: list[int] = []
    if committed is not None:
        below = bisect.bisect_left(acked, committed)
        removed.extend(acked[:below])
        del acked[:below]
    if not acked or (committed is not None and acked[0] != committed):
        return None, removed
    end = acked[0]
    run = 1
    for offset in acked[1:]:
        if offset != end + 1:
            break
        end, run = offset, run + 1
    removed.extend(acked[:run])
    del acked[:run]
    return end + 1, removed
