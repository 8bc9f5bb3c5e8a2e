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

The table stays the source of truth: every change is written there (by
`store`) before the batch is acked; a live object changed by a batch or a
tick that failed is dropped with everything else (`clear`), and at every
rebalance, after which states are read from the recovered table.

Pure: no faust, no Kafka.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Any

from streams.activity import ActivityConfig, DeviceActivity
from streams.device_state import decode_state, encode_state

#: Live objects kept by default: about 40 MB of them, for several times the
#: devices a worker's throughput can keep sending at once.
MAX_LIVE = 10_000


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
        self._due: dict[bytes, int | None] = {}  # DeviceActivity.quiet_at of the entry
        self._open: set[bytes] = set()  # entries with an open session

    def get(self, key: bytes) -> DeviceActivity:
        """The device's live state (decoded from the table, or new); the caller may
        change it, and `store`s it once its outputs are acknowledged. Raises
        `streams.device_state.StateFormatError` on an entry it cannot read."""
        state = self.live.get(key)
        if state is not None:
            self.live.move_to_end(key)
            return state
        state = decode_state(self.table.get(key))
        self._note(key, state)
        self.live[key] = state
        if len(self.live) > self.max_live:
            self.live.popitem(last=False)  # stored, or held by the batch that changed it
        return state

    def store(self, key: bytes, state: DeviceActivity) -> None:
        """Write `state` to the table as the device's entry."""
        self.table[key] = encode_state(state)
        self._note(key, state)

    def may_tick(self, key: bytes, now: int) -> bool:
        """False when a timer tick at `now` would leave the device as it is (its
        `DeviceActivity.tick` returns nothing before `quiet_at`)."""
        state = self.live.get(key)
        if state is not None:
            due = state.quiet_at(self.cfg)
        elif key in self._due:
            due = self._due[key]
        else:
            due = self.get(key).quiet_at(self.cfg)
        return due is not None and due <= now

    def has_open_session(self, key: bytes) -> bool:
        """Whether the device (its live state, else its entry) has an open session."""
        state = self.live.get(key)
        if state is None and key not in self._due:
            state = self.get(key)
        if state is not None:
            return state.has_open_session
        return key in self._open

    def clear(self) -> None:
        """Forget every live object and note: the table is read afresh."""
        self.live.clear()
        self._due.clear()
        self._open.clear()

    def _note(self, key: bytes, state: DeviceActivity) -> None:
        self._due[key] = state.quiet_at(self.cfg)
        if state.has_open_session:
            self._open.add(key)
        else:
            self._open.discard(key)
