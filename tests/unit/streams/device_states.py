"""Device states for the tests of their table entries and of the state cache."""

from __future__ import annotations

from typing import Any

from streams.activity import ActivityConfig, DeviceActivity
from streams.minutes import MinuteConfig
from streams.session import SessionConfig
from tests.unit.streams.streams_events import SECOND, T0, Device, click, key, move, scroll

CFG = ActivityConfig(
    session=SessionConfig(gap_micros=60 * SECOND, grace_micros=5 * SECOND),
    minutes=MinuteConfig(grace_micros=5 * SECOND),
)
FRAME: dict[str, Any] = {"type": "ScreenFrame", "ref": "frames/0001.webp", "width": 1, "height": 1}
IDLE: dict[str, Any] = {"type": "ActivityState", "state": "idle"}


def busy_device() -> tuple[DeviceActivity, Device]:
    """A device in the middle of everything: events buffered in the session and
    minute clocks, an open session and windows, an open typing draft, a pointer
    path waiting for a click, remembered frames, a gap in its seqs."""
    dev = Device()
    state = DeviceActivity()
    events = [
        dev.event(T0, FRAME),
        dev.event(T0 + SECOND, click(3, 4)),
        dev.event(T0 + 2 * SECOND, scroll(0, -3), app="browser", title="docs"),
        dev.event(T0 + 3 * SECOND, move((0, 1, 1), (16, 5, 9))),
        dev.event(T0 + 4 * SECOND, key("h")),
        dev.event(T0 + 4 * SECOND + 200_000, key(text="ello wor")),
    ]
    dev.seq += 3  # a gap: the ledgers hold two ranges
    events += [dev.event(T0 + 9 * SECOND + i * 250_000, key("x")) for i in range(12)]
    for e in events:
        state.seen.seen(e["seq"])
    state.fold(events, T0 + 13 * SECOND, CFG)
    return state, dev
