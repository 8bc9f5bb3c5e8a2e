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

For a topic whose producers are idempotent and not transactional (Candor's
``capture.events``) every offset holds a record, so a gap is always a
bookkeeping error. `ReadLedger` keeps, per partition, the next offset the agent
must get (``expected``) and when the partition was last sought: a record
fetched before that seek is *stale* (skipped; the seek will fetch it again), an
offset below ``expected`` was handed over already, and one above it means
records went missing, so the caller seeks back instead of handing it over.
Every change of position the agent did not see (a seek, a cleared queue) goes
through `sought` or `rewind`. `committable` never moves a commit past an offset
that was not acknowledged.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What to do with one fetched record."""

    DELIVER = "deliver"  # the next offset the agent needs (or any, before the first)
    STALE = "stale"  # fetched before the partition was last sought: it comes again
    SEEN = "seen"  # below the next expected offset: handed over already
    GAP = "gap"  # above the next expected offset: records in between went missing


@dataclass
class _Partition:
    expected: int | None = None  # None: no position known yet, take what comes
    moved_at: int = 0  # ledger clock of the last seek or rewind


class ReadLedger:
    """Per-partition read positions of one consumer; keys are faust's TPs.

    The clock ticks at every seek and rewind. A caller takes `clock` *before*
    it asks the broker for records and passes it back with each record of that
    fetch: a record fetched before its partition's position last moved is
    stale, and handing it over does not move the position (it comes again)."""

    def __init__(self) -> None:
        self.clock = 0
        self._parts: dict[Hashable, _Partition] = {}

    def expected(self, tp: Hashable) -> int | None:
        """The next offset the agent must get, or None when any will do."""
        part = self._parts.get(tp)
        return None if part is None else part.expected

    def verdict(self, tp: Hashable, offset: int, fetched_at: int) -> Verdict:
        part = self._parts.get(tp)
        if part is None:
            return Verdict.DELIVER
        if part.moved_at > fetched_at:
            return Verdict.STALE
        if part.expected is None or offset == part.expected:
            return Verdict.DELIVER
        return Verdict.SEEN if offset < part.expected else Verdict.GAP

    def delivered(self, tp: Hashable, offset: int, fetched_at: int) -> None:
        """The agent has the record at `offset` (fetched at `fetched_at`). When
        the position moved while it was being handed over (a seek, a cleared
        queue), it is not counted: it comes again, and a duplicate is harmless
        where a skipped record is lost."""
        part = self._parts.setdefault(tp, _Partition())
        if part.moved_at <= fetched_at:
            part.expected = offset + 1

    def sought(self, tp: Hashable, offset: int | None) -> None:
        """The fetcher of `tp` now reads from `offset` (None: position unknown);
        records fetched before this call are stale."""
        self.clock += 1
        self._parts[tp] = _Partition(offset, self.clock)

    def rewind(self, tp: Hashable, offset: int) -> None:
        """The record at `offset` was handed over but dropped before the agent
        processed it (a cleared queue): the agent needs it again. The fetcher
        has moved on, so the next record read is a `GAP` and the caller seeks;
        records fetched before the rewind are stale."""
        part = self._parts.setdefault(tp, _Partition())
        if part.expected is None or offset < part.expected:
            self.clock += 1
            part.expected, part.moved_at = offset, self.clock

    def skip_to(self, tp: Hashable, offset: int) -> None:
        """Records below `offset` are gone from the broker (retention): expect `offset`."""
        self._parts.setdefault(tp, _Partition()).expected = offset

    def forget(self, tps: Iterable[Hashable]) -> None:
        """The partitions were revoked."""
        for tp in tps:
            self._parts.pop(tp, None)


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
