"""Event-time progress of one key: which events it has seen, which it may still reorder.

Every stateful stream step (sessions, minute windows) keys its state and keeps
one ``EventClock`` in it. The clock answers, for each incoming event, one of:

* ``DUPLICATE`` -- its ``(device_id, seq)`` was already taken in. A redelivery
  after a worker restart lands here, so re-applying an event is a no-op.
* ``LATE`` -- its ``ts`` is below the floor (the watermark ``max ts - grace``,
  or a floor raised by a timer close). The caller hands it to a side output.
* ``PENDING`` -- kept, as a compact ``Mark``, in a buffer ordered by
  ``(ts, device_id, seq)``. ``drain()`` releases marks in that order once the
  watermark passed them, so the caller folds events exactly in event-time
  order however they arrived: results do not depend on arrival order within
  the grace period. The buffer holds about ``grace`` worth of events per key.

Seen sequence numbers are kept per device as disjoint ``[lo, hi]`` ranges
(``SeqLedger``): a gap-free stream costs one range. When more than
``max_ranges`` gaps accumulate, the lowest gap is filled (its missing seqs are
taken as lost for good: if one shows up later it is dropped as a duplicate).
A seq that is already in the ledger but carries a ``ts`` above every ts the key
has taken in cannot be a redelivery; it means the device restarted its
numbering, and the ledger of that device starts over.

All state is plain data: ``to_dict()`` gives JSON-serialisable dicts/lists,
``from_dict()`` restores them exactly.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple, Protocol, TypeVar

from streams.geometry import path_length

_mark_ts = attrgetter("ts")


class Mark(NamedTuple):
    """What a stream step remembers of one event while it waits for the watermark.

    ``qty`` is KeyInput ``count``, MouseMove path length in pixels, else 0;
    ``state`` is ActivityState ``state``, else None.
    """

    ts: int
    device_id: str
    seq: int
    kind: str
    app: str
    qty: float
    state: str | None


def mark_of(event: Mapping[str, Any]) -> Mark:
    """Return the compact ``Mark`` of a contract-form capture event.

    Raises ``KeyError``/``TypeError`` on an event outside the contract (the
    validation step upstream keeps those out of the stream).
    """
    payload = event["payload"]
    kind: str = payload["type"]
    qty = 0.0
    state: str | None = None
    if kind == "KeyInput":
        qty = float(payload.get("count", 1))
    elif kind == "MouseMove":
        qty = path_length(payload.get("path") or ())
    elif kind == "ActivityState":
        state = payload["state"]
    # tuple.__new__ rather than Mark(...): the named tuple's generated __new__ is a
    # Python-level call, and every clean event of a batch makes one mark
    return _new_tuple(
        Mark,
        (
            int(event["ts"]),
            str(event["device_id"]),
            int(event["seq"]),
            kind,
            str(event["app"]["app_name"]),
            qty,
            state,
        ),
    )


_new_tuple = tuple.__new__


@dataclass(slots=True)
class SeqLedger:
    """The sequence numbers of one device taken in so far, as sorted disjoint ranges."""

    ranges: list[list[int]] = field(default_factory=list)

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int) or not self.ranges:
            return False
        last = self.ranges[-1]
        if seq >= last[0]:
            return seq <= last[1]
        i = bisect.bisect_right(self.ranges, seq, key=_range_lo) - 1
        return i >= 0 and self.ranges[i][1] >= seq

    def add(self, seq: int, max_ranges: int) -> None:
        """Record ``seq`` (a no-op if contained); keep at most ``max_ranges`` ranges.

        O(1) for the in-order case, O(log n + n) memmove otherwise.
        """
        ranges = self.ranges
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
            return
        i = bisect.bisect_right(ranges, seq, key=_range_lo)
        if i > 0 and ranges[i - 1][1] >= seq:
            return  # already contained (e.g. in a gap filled by the cap)
        joins_left = i > 0 and ranges[i - 1][1] + 1 == seq
        joins_right = i < len(ranges) and ranges[i][0] - 1 == seq
        if joins_left and joins_right:
            ranges[i - 1][1] = ranges[i][1]
            del ranges[i]
        elif joins_left:
            ranges[i - 1][1] = seq
        elif joins_right:
            ranges[i][0] = seq
        else:
            ranges.insert(i, [seq, seq])
        while len(ranges) > max(1, max_ranges):
            ranges[1][0] = ranges[0][0]
            del ranges[0]

    def clear(self) -> None:
        """Forget every sequence number (the device restarted its numbering)."""
        self.ranges.clear()


def _range_lo(r: list[int]) -> int:
    return r[0]


class Admission(enum.Enum):
    """What ``EventClock.admit`` decided about one event."""

    DUPLICATE = "duplicate"
    LATE = "late"
    PENDING = "pending"


# module constants: an Enum member read through its class costs a metaclass lookup
_DUPLICATE, _LATE, _PENDING = Admission.DUPLICATE, Admission.LATE, Admission.PENDING


@dataclass(slots=True)
class EventClock:
    """Watermark, reorder buffer and dedupe ledger of one key (see module docstring).

    ``floor``: events with ``ts < floor`` are late; it only rises.
    ``last_wall``: the latest wall-clock time (micros) an event was taken in,
    for timer closes of quiet keys.
    """

    max_ts: int | None = None
    floor: int | None = None
    last_wall: int | None = None
    pending: list[Mark] = field(default_factory=list)
    ledgers: dict[str, SeqLedger] = field(default_factory=dict)

    def admit(self, mark: Mark, now_micros: int, grace_micros: int, max_ranges: int) -> Admission:
        """Take ``mark`` in; return whether it is a duplicate, late, or pending.

        A duplicate leaves the clock unchanged. A late mark is recorded in the
        ledger (so its redelivery is a duplicate, not a second late output) but
        not buffered. A pending mark raises the watermark.
        """
        # Runs twice per clean event (sessions and minutes), so the common case --
        # the device's next seq, at or after every buffered mark -- is inlined:
        # a seq one past the ledger's last range is above every range (not a
        # duplicate) and extends that range, as SeqLedger.add would.
        ts, device_id, seq = mark[0], mark[1], mark[2]
        ledger = self.ledgers.get(device_id)
        if ledger is None:
            ledger = self.ledgers[device_id] = SeqLedger()
            ledger.add(seq, max_ranges)
        else:
            ranges = ledger.ranges
            if ranges and seq == ranges[-1][1] + 1:
                ranges[-1][1] = seq
            else:
                if seq in ledger:
                    if self.max_ts is None or ts <= self.max_ts:
                        return _DUPLICATE
                    ledger.clear()
                ledger.add(seq, max_ranges)
        last_wall = self.last_wall
        if last_wall is None or now_micros > last_wall:
            self.last_wall = now_micros
        floor = self.floor
        if floor is not None and ts < floor:
            return _LATE
        pending = self.pending
        if not pending or mark > pending[-1]:
            pending.append(mark)
        else:
            bisect.insort(pending, mark)
        max_ts = self.max_ts
        if max_ts is None or ts > max_ts:
            self.max_ts = ts
            ts -= grace_micros
            if floor is None or ts > floor:  # raise_floor, inlined
                self.floor = ts
        return _PENDING

    def raise_floor(self, ts: int) -> None:
        """Declare every event time below ``ts`` decided; later events there are late."""
        if self.floor is None or ts > self.floor:
            self.floor = ts

    def drain(self) -> list[Mark]:
        """Remove and return, in event-time order, the pending marks below the floor."""
        if self.floor is None or not self.pending or self.pending[0].ts >= self.floor:
            return []
        k = bisect.bisect_left(self.pending, self.floor, key=_mark_ts)
        released = self.pending[:k]
        del self.pending[:k]
        return released

    def release_all(self) -> list[Mark]:
        """Remove and return every pending mark in order; raise the floor above them."""
        released = self.pending
        self.pending = []
        if self.max_ts is not None:
            self.raise_floor(self.max_ts + 1)
        return released

    def is_quiet(self, now_micros: int, period_micros: int) -> bool:
        """Return True when no event was taken in during the last ``period_micros`` of wall time."""
        return self.last_wall is not None and now_micros - self.last_wall >= period_micros

    def to_dict(self) -> dict[str, Any]:
        """Return the clock as JSON-serialisable plain data (a copy: no aliasing)."""
        return {
            "max_ts": self.max_ts,
            "floor": self.floor,
            "last_wall": self.last_wall,
            "pending": [list(m) for m in self.pending],  # Marks (named tuples) as arrays
            "ledgers": {
                device: [r[:] for r in ledger.ranges] for device, ledger in self.ledgers.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventClock:
        """Rebuild a clock from ``to_dict()`` output (possibly through JSON)."""
        return cls(
            max_ts=data["max_ts"],
            floor=data["floor"],
            last_wall=data["last_wall"],
            pending=[_make_mark(m) for m in data["pending"]],
            ledgers={
                device: SeqLedger([[int(lo), int(hi)] for lo, hi in ranges])
                for device, ranges in data["ledgers"].items()
            },
        )


_make_mark = Mark._make


def wall_clock(event: Mapping[str, Any], now_micros: int | None) -> int:
    """Return the wall-clock time to record for ``event``.

    ``now_micros`` when the caller passes it (the worker's clock; preferred, so a
    backlog being replayed does not look quiet); else the gateway's
    ``received_ts``; else the event's own ``ts``.
    """
    if now_micros is not None:
        return now_micros
    received = event.get("received_ts")
    return int(received) if received is not None else int(event["ts"])


class _Clocked(Protocol):
    clock: EventClock


C = TypeVar("C", bound=_Clocked)


def admit_events(
    state: C | None,
    events: Iterable[Mapping[str, Any]],
    marks: Sequence[Mark] | None,
    new_state: Callable[[Mapping[str, Any]], C],
    now_micros: int | None,
    grace_micros: int,
    max_ranges: int,
) -> tuple[C | None, list[Mapping[str, Any]], bool]:
    """Admit each event's mark (``marks``, else ``mark_of`` each) into the clock of
    a reducer's state, made by ``new_state`` from the first event when None; the
    reducers' shared intake. Returns the state, the late events in order, and
    whether any mark went into the buffer (else there is nothing to drain)."""
    late: list[Mapping[str, Any]] = []
    taken = False
    evs = events if isinstance(events, Sequence) else list(events)
    for event, mark in zip(evs, map(mark_of, evs) if marks is None else marks, strict=True):
        if state is None:
            state = new_state(event)
        wall = now_micros if now_micros is not None else wall_clock(event, None)
        admission = state.clock.admit(mark, wall, grace_micros, max_ranges)
        if admission is _PENDING:
            taken = True
        elif admission is _LATE:
            late.append(event)
        # a duplicate: no output, state unchanged
    return state, late, taken
