"""The worker's device states in memory: the table's bytes, a bounded set of live
objects, and what the timer needs to know of every device.

The device table (faust's memory store, its changelog behind it) holds one
compact entry per device (`streams.device_state`, about 420 bytes for a
device with an open session). A live `DeviceActivity` is about 3.5 KB: a
worker that kept one for each of 100,000 open sessions, as it did, held
350 MB in them alone, on top of the table (issue 12 asks for 500 MB in all).
So `StateCache` keeps live objects for the `max_live` devices used last (the
devices still sending: a worker folding 20,000 events/s at 10-25 events/s
per device has a few thousand of them) and decodes the others' entries when
they come back.

The timer visits every device on every tick to close what quiet devices left
open and to count the open sessions. For a device without a live object it
reads two notes taken whenever the device's entry was decoded or stored: the
wall-clock time from which its `DeviceActivity.tick` may do anything
(`DeviceActivity.quiet_at`) and whether it has an open session; a device is
decoded again only when it is due.

The table stays the source of truth: a batch `snapshot`s the states it
changed as entries, and each entry is written there (`commit`) once the
batch's outputs are acknowledged, before the batch is acked. The worker
routes the next batch meanwhile: a device whose live object was let go in
between is read back from the entry waiting to be committed, not from the
table, which does not hold it yet. A live object changed by a batch or a tick
that failed is dropped with everything else (`clear`), and at every
rebalance, after which states are read from the recovered table.

Pure: no faust, no Kafka.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, MutableMapping
from typing import Any, NamedTuple

from streams.activity import ActivityConfig, DeviceActivity
from streams.device_state import MarksMemo, decode_state, encode_state

#: Live objects kept by default: about 20 MB of them, for more than twice the
#: devices a worker's throughput can keep sending at once (20,000 events/s at
#: 10-25 events/s per device is under 2,000 devices). 10,000 held about 20 MB
#: more at 100,000 open sessions (docs/worker-state.md).
MAX_LIVE = 5_000

#: Devices whose last written buffer text is kept (`MarksMemo`, about 30 bytes
#: per buffered event: some 5 KB for a device sending 15 events/s).
MAX_MEMOS = 2_000


class Entry(NamedTuple):
    """A device's table entry as a batch snapshot it, with the timer's notes of it."""

    data: bytes
    quiet_at: int | None  # DeviceActivity.quiet_at
    open_session: bool


class StateCache:
    """Device states of one worker: `table` (device_id bytes -> entry) and, for
    the `max_live` devices used last, their live objects."""

    def __init__(
        self, table: MutableMapping[bytes, Any], cfg: ActivityConfig, max_live: int = MAX_LIVE
    ) -> None:
        self.table = table
        self.cfg = cfg
        self.max_live = max(1, max_live)
        self.live: OrderedDict[bytes, DeviceActivity] = OrderedDict()
        self._pending: dict[bytes, Entry] = {}  # snapshot, not committed yet
        self._due: dict[bytes, int | None] = {}  # DeviceActivity.quiet_at of the entry
        self._open: set[bytes] = set()  # entries with an open session
        # the devices written last: their buffers' text, so a write encodes only what is new
        self._memos: OrderedDict[bytes, MarksMemo] = OrderedDict()

    def get(self, key: bytes) -> DeviceActivity:
        """The device's live state (decoded from its entry waiting to be committed,
        else from the table, or new); the caller may change it, and `snapshot`s
        or `store`s it. Raises `streams.device_state.StateFormatError` on an
        entry it cannot read."""
        state = self.live.get(key)
        if state is not None:
            self.live.move_to_end(key)
            return state
        pending = self._pending.get(key)
        state = decode_state(self.table.get(key) if pending is None else pending.data)
        if pending is None:
            self._note(key, state.quiet_at(self.cfg), state.has_open_session)
        self.live[key] = state
        if len(self.live) > self.max_live:
            self.live.popitem(last=False)  # snapshot, stored, or held by its batch
        return state

    def snapshot(self, states: Mapping[str, DeviceActivity]) -> dict[bytes, Entry]:
        """Entries of `states` (device_id -> state, as a batch changed them) to
        `commit` once the batch's outputs are acknowledged."""
        entries = {}
        for device, state in states.items():
            key = device.encode()
            entries[key] = self._pending[key] = Entry(
                encode_state(state, self._memo(key)),
                state.quiet_at(self.cfg),
                state.has_open_session,
            )
        return entries

    def commit(self, key: bytes, entry: Entry) -> None:
        """Write a `snapshot` entry to the table."""
        self.table[key] = entry.data
        if self._pending.get(key) is entry:
            del self._pending[key]
        self._note(key, entry.quiet_at, entry.open_session)

    def store(self, key: bytes, state: DeviceActivity) -> None:
        """Write `state` to the table as the device's entry at once."""
        entry = Entry(
            encode_state(state, self._memo(key)), state.quiet_at(self.cfg), state.has_open_session
        )
        self._pending.pop(key, None)
        self.commit(key, entry)

    def may_tick(self, key: bytes, now: int) -> bool:
        """False when a timer tick at `now` would leave the device as it is (its
        `DeviceActivity.tick` returns nothing before `quiet_at`)."""
        state = self.live.get(key)
        if state is not None:
            due = state.quiet_at(self.cfg)
        elif key in self._pending:
            due = self._pending[key].quiet_at
        elif key in self._due:
            due = self._due[key]
        else:
            due = self.get(key).quiet_at(self.cfg)
        return due is not None and due <= now

    def has_open_session(self, key: bytes) -> bool:
        """Whether the device (its live state, else its entry) has an open session."""
        state = self.live.get(key)
        if state is not None:
            return state.has_open_session
        pending = self._pending.get(key)
        if pending is not None:
            return pending.open_session
        if key not in self._due:
            return self.get(key).has_open_session
        return key in self._open

    def clear(self) -> None:
        """Forget every live object, snapshot and note: the table is read afresh."""
        self.live.clear()
        self._pending.clear()
        self._due.clear()
        self._open.clear()
        self._memos.clear()

    def _memo(self, key: bytes) -> MarksMemo:
        memo = self._memos.get(key)
        if memo is None:
            memo = self._memos[key] = MarksMemo()
            if len(self._memos) > MAX_MEMOS:
                self._memos.popitem(last=False)
        else:
            self._memos.move_to_end(key)
        return memo

    def _note(self, key: bytes, quiet_at: int | None, open_session: bool) -> None:
        self._due[key] = quiet_at
        if open_session:
            self._open.add(key)
        else:
            self._open.discard(key)
