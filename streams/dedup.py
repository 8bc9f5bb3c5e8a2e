"""Per-device duplicate detection by sequence number.

A capture client numbers a device's events (`seq`) and sends them in order; its
spool replays unacknowledged ones in order after a failure, so what arrives
twice is a seq already passed on. The ledger keeps the seqs passed on within
`DEDUP_WINDOW` below the highest one, as sorted disjoint ranges: in-order input
is one range growing at its end, so the state stays a few integers however
many events a device sends (it is stored in the worker's table, and its
changelog, after every batch). Pure; no faust, no Kafka.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEDUP_WINDOW = 4096


@dataclass(slots=True)
class DeviceSeen:
    """The seqs of one device passed on so far (within the window).

    `ranges` holds `[lo, hi]` pairs (inclusive), sorted, neither overlapping nor
    touching; a seq more than `DEDUP_WINDOW` below `max_seq` counts as seen."""

    max_seq: int = -1
    ranges: list[list[int]] = field(default_factory=list)

    def seen(self, seq: int) -> bool:
        """True when `seq` was passed on already (or is too old to tell);
        otherwise records it and returns False."""
        ranges = self.ranges
        if not ranges or seq > ranges[-1][1]:
            if seq < self.max_seq - DEDUP_WINDOW:
                return True
            if ranges and seq == ranges[-1][1] + 1:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])
            self.max_seq = seq
            self._forget_old()
            return False
        if seq < self.max_seq - DEDUP_WINDOW:
            return True
        i = bisect_right(ranges, seq, key=lambda r: r[0]) - 1
        if i >= 0 and seq <= ranges[i][1]:
            return True
        joins_left = i >= 0 and ranges[i][1] + 1 == seq
        joins_right = ranges[i + 1][0] - 1 == seq  # i + 1 exists: seq < ranges[-1][1]
        if joins_left and joins_right:
            ranges[i][1] = ranges[i + 1][1]
            del ranges[i + 1]
        elif joins_left:
            ranges[i][1] = seq
        elif joins_right:
            ranges[i + 1][0] = seq
        else:
            ranges.insert(i + 1, [seq, seq])
        return False

    def add_new(self, seqs: list[int]) -> None:
        """Record ``seqs``, strictly increasing and all above `max_seq`: what `seen`
        of each in turn would record (each returning False), in one pass.

        A device's in-order batch is such: each seq extends the last range or
        opens one, and forgetting what fell below the window once, at the
        end, forgets what forgetting after each seq would have."""
        ranges = self.ranges
        if not seqs or seqs[0] <= self.max_seq or (ranges and seqs[0] <= ranges[-1][1]):
            # not the case this is for: one by one
            for seq in seqs:
                self.seen(seq)
            return
        for seq in seqs:
            if ranges and seq == ranges[-1][1] + 1:
                ranges[-1][1] = seq
            else:
                ranges.append([seq, seq])
        self.max_seq = seqs[-1]
        self._forget_old()

    def covers(self, lo: int, hi: int) -> bool:
        """True when every seq of ``lo..hi`` was passed on already (or is too old to
        tell): what `seen` would say of each, without recording anything."""
        floor = self.max_seq - DEDUP_WINDOW
        if hi < floor:
            return True
        lo = max(lo, floor)
        i = bisect_right(self.ranges, lo, key=lambda r: r[0]) - 1
        return i >= 0 and hi <= self.ranges[i][1]

    def _forget_old(self) -> None:
        floor = self.max_seq - DEDUP_WINDOW
        ranges = self.ranges
        if ranges[0][0] >= floor:
            return
        while ranges[0][1] < floor:
            del ranges[0]
        ranges[0][0] = max(ranges[0][0], floor)

    def to_dict(self) -> dict[str, Any]:
        return {"max_seq": self.max_seq, "ranges": [list(r) for r in self.ranges]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DeviceSeen:
        """Read `to_dict()`'s form, or the earlier one (`recent`: every seq listed)."""
        if not data:
            return cls()
        state = cls(int(data["max_seq"]), [[int(lo), int(hi)] for lo, hi in data.get("ranges", ())])
        if "recent" in data:
            for seq in sorted(data["recent"]):
                if state.ranges and state.ranges[-1][1] + 1 == seq:
                    state.ranges[-1][1] = seq
                else:
                    state.ranges.append([seq, seq])
        return state
