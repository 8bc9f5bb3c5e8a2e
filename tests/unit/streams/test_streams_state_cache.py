"""The worker's device states in memory: a bounded set of live objects over the
table's entries, and when the timer may pass a device over."""

from __future__ import annotations

from typing import Any

from streams.activity import DeviceActivity, Outputs
from streams.device_state import decode_state, encode_state
from streams.state_cache import StateCache
from tests.unit.streams.device_states import CFG, busy_device
from tests.unit.streams.streams_events import SECOND, T0, Device, click, key


def opened(device_id: str) -> DeviceActivity:
    """A device with an open session (two clicks folded) and a third click buffered."""
    dev = Device(device_id)
    state = DeviceActivity()
    state.fold([dev.event(T0 + i * 10 * SECOND, click(i, i)) for i in range(3)], T0, CFG)
    assert state.has_open_session
    return state


def test_only_the_devices_used_last_stay_live_and_the_others_come_back_from_the_table() -> None:
    table: dict[bytes, Any] = {}
    cache = StateCache(table, CFG, max_live=2)
    states = {f"dev-{i}".encode(): opened(f"dev-{i}") for i in range(5)}
    for k, state in states.items():
        cache.get(k)  # a new device
        cache.store(k, state)
    assert list(cache.live) == [b"dev-3", b"dev-4"]
    again = cache.get(b"dev-0")
    assert again.to_dict() == states[b"dev-0"].to_dict()
    assert list(cache.live) == [b"dev-4", b"dev-0"]


def test_open_sessions_are_known_without_live_objects() -> None:
    table: dict[bytes, Any] = {}
    cache = StateCache(table, CFG, max_live=1)
    cache.store(b"open", opened("open"))
    cache.store(b"idle", DeviceActivity())
    cache.live.clear()
    assert cache.has_open_session(b"open") and not cache.has_open_session(b"idle")
    assert not cache.live  # told from the notes taken when they were stored
    fresh = StateCache(table, CFG, max_live=1)  # after a rebalance: read from the table
    assert fresh.has_open_session(b"open") and not fresh.has_open_session(b"idle")


def test_a_device_is_due_from_its_quiet_time_only() -> None:
    table: dict[bytes, Any] = {}
    cache = StateCache(table, CFG, max_live=1)
    state = opened("dev-1")
    cache.store(b"dev-1", state)
    cache.live.clear()
    due = state.quiet_at(CFG)
    assert due is not None
    assert not cache.may_tick(b"dev-1", due - 1) and not cache.live  # passed over, not decoded
    assert cache.may_tick(b"dev-1", due)
    assert StateCache(table, CFG).may_tick(b"dev-1", due)  # after a rebalance too


def test_nothing_open_is_never_due() -> None:
    assert DeviceActivity().quiet_at(CFG) is None
    state = opened("dev-1")
    state.tick(T0 + 24 * 3600 * SECOND, CFG)  # everything closed
    assert state.quiet_at(CFG) is None


def test_a_tick_before_the_quiet_time_leaves_the_device_as_it_is() -> None:
    # The contract the timer relies on when it passes a device over.
    busy, _ = busy_device()
    dev = Device("dev-2")
    typing = DeviceActivity()
    typing.fold([dev.event(T0 + i * SECOND // 5, key("a")) for i in range(30)], T0, CFG)
    for state in (busy, typing, opened("dev-3")):
        due = state.quiet_at(CFG)
        assert due is not None
        before = encode_state(state)
        for now in (T0, due - 10 * SECOND, due - 1):
            assert state.tick(now, CFG) == Outputs()
            assert encode_state(state) == before
        copy = decode_state(before)
        out = copy.tick(due + 3600 * SECOND, CFG)
        assert out.sessions or out.minutes or out.actions  # and later it does close
