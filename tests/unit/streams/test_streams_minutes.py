"""Minute aggregates: window measures, exactly-once emission, lateness, timers."""

from __future__ import annotations

from typing import Any

import pytest

from streams import minutes
from streams.minutes import MinuteConfig, MinuteState
from tests.unit.streams.streams_events import (
    HOUR,
    MINUTE,
    SECOND,
    T0,
    Device,
    click,
    key,
    move,
    scroll,
    through_json,
)

CFG = MinuteConfig()
FAR_FUTURE = T0 + 1000 * HOUR


def run(
    events: list[dict[str, Any]], cfg: MinuteConfig = CFG, restart_each: bool = False
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Feed ``events`` in order, then let a timer emit what is left."""
    state: MinuteState | None = None
    out: list[dict[str, Any]] = []
    late: list[Any] = []
    for event in events:
        if restart_each:
            state = through_json(state, MinuteState)
        state, emitted, too_late = minutes.apply(state, event, cfg, now_micros=event["ts"])
        out += emitted
        late += too_late
    if state is not None:
        out += minutes.on_timer(state, FAR_FUTURE, cfg)[1]
    return out, late


def by_start(windows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {w["window_start"] - T0: w for w in windows}


def test_counts_land_in_the_minute_of_their_event_time() -> None:
    device = Device()
    events = [
        device.event(T0 + 5 * SECOND, key(text="abc", count=3)),
        device.event(T0 + 59 * SECOND, click(1, 1)),
        device.event(T0 + MINUTE, scroll(0, 2)),  # the first instant of the next minute
        device.event(T0 + MINUTE + 30 * SECOND, move((0, 0, 0), (10, 30, 40))),
    ]
    windows, late = run(events)
    assert late == []
    got = by_start(windows)
    assert sorted(got) == [0, MINUTE]
    assert [(w["keys"], w["clicks"], w["scrolls"], w["events"]) for w in got.values()] == [
        (3, 1, 0, 2),
        (0, 0, 1, 2),
    ]
    assert got[MINUTE]["mouse_distance_px"] == pytest.approx(50.0)
    assert got[0]["org_id"] == "org-1" and got[0]["subject_id"] == "subj-1"


@pytest.mark.parametrize(
    ("first", "second", "active"),
    [
        (50 * SECOND, 70 * SECOND, {0: 10.0, MINUTE: 10.0}),  # split at the minute edge
        (10 * SECOND, 40 * SECOND, {0: 30.0}),
        (0, 60 * SECOND, {0: 60.0, MINUTE: 0.0}),  # exactly the threshold is active
        (0, 60 * SECOND + 1, {0: 0.0, MINUTE: 0.0}),  # a longer pause is not
    ],
)
def test_active_seconds_split_at_minute_edges(
    first: int, second: int, active: dict[int, float]
) -> None:
    device = Device()
    windows, _ = run([device.event(T0 + first, key("a")), device.event(T0 + second, key("b"))])
    got = by_start(windows)
    assert {start: w["active_seconds"] for start, w in got.items()} == active
    assert {start: w["app_seconds"].get("editor", 0.0) for start, w in got.items()} == active


def test_active_time_is_not_double_counted_across_devices() -> None:
    laptop, phone = Device("laptop"), Device("phone")
    events = []
    for i in range(6):
        events.append(laptop.event(T0 + i * 10 * SECOND, key("a"), app="editor"))
        events.append(phone.event(T0 + i * 10 * SECOND + 5 * SECOND, key("b"), app="chat"))
    windows, _ = run(events)
    (only,) = windows
    assert only["events"] == 12  # same seq numbers on two devices are different events
    assert only["active_seconds"] == pytest.approx(55.0)
    assert only["app_seconds"] == pytest.approx({"editor": 30.0, "chat": 25.0})


def test_each_window_is_emitted_once_even_across_restarts_and_redeliveries() -> None:
    device = Device()
    events = [device.event(T0 + i * 7 * SECOND, key("a")) for i in range(60)]
    clean, _ = run(events)
    starts = [w["window_start"] for w in clean]
    assert starts == sorted(set(starts)) and len(starts) == 7  # 0 s .. 413 s
    replayed = events[:30] + events[10:45] + events[40:]
    again, late = run(replayed, restart_each=True)
    assert (again, late) == (clean, [])


def test_window_waits_until_no_interval_can_reach_into_it() -> None:
    device = Device()
    state, out, _ = minutes.apply(None, device.event(T0 + 50 * SECOND, key("a")), CFG)
    assert out == []
    # watermark 60 s: the window's end, but the interval after 0:50 may still grow into it
    state, out, _ = minutes.apply(state, device.event(T0 + 90 * SECOND, key("b")), CFG)
    assert out == []
    state, out, _ = minutes.apply(state, device.event(T0 + 121 * SECOND, key("c")), CFG)
    assert [w["window_start"] - T0 for w in out] == [0]
    assert out[0]["active_seconds"] == pytest.approx(10.0)


@pytest.mark.parametrize(("ts", "is_late"), [(30 * SECOND, False), (29 * SECOND, True)])
def test_event_behind_the_watermark_is_late(ts: int, is_late: bool) -> None:
    device = Device()
    head = device.event(T0 + MINUTE, key("a"))
    straggler = device.event(T0 + ts, key("b"))
    windows, late = run([head, straggler])
    assert late == ([straggler] if is_late else [])
    assert sum(w["events"] for w in windows) == (1 if is_late else 2)


def test_timer_emits_a_quiet_subject_and_closes_the_minute() -> None:
    device = Device()
    state, _, _ = minutes.apply(None, device.event(T0 + 10 * SECOND, key("a")), CFG, T0)
    state, out = minutes.on_timer(state, T0 + 89 * SECOND, CFG)
    assert out == []
    state, out = minutes.on_timer(state, T0 + 90 * SECOND, CFG)
    assert [(w["window_start"], w["events"]) for w in out] == [(T0, 1)]
    in_emitted = device.event(T0 + 40 * SECOND, key("b"))
    state, out, late = minutes.apply(state, in_emitted, CFG, T0 + 2 * MINUTE)
    assert (out, late) == ([], [in_emitted])
    next_minute = device.event(T0 + MINUTE + SECOND, key("c"))
    state, out, late = minutes.apply(state, next_minute, CFG, T0 + 2 * MINUTE)
    assert late == []
    _, out = minutes.on_timer(state, FAR_FUTURE, CFG)
    assert [(w["window_start"] - T0, w["events"], w["active_seconds"]) for w in out] == [
        (MINUTE, 1, 0.0),
    ]


def test_duplicate_is_a_no_op() -> None:
    device = Device()
    event = device.event(T0, key(text="hey", count=3))
    state, _, _ = minutes.apply(None, event, CFG)
    before = state.to_dict()
    state, out, late = minutes.apply(state, event, CFG)
    assert (out, late, state.to_dict()) == ([], [], before)


def test_windows_are_minute_aligned_across_midnight() -> None:
    midnight = (T0 // (24 * HOUR) + 1) * 24 * HOUR
    device = Device()
    events = [device.event(midnight + off, key("a")) for off in (-20 * SECOND, 15 * SECOND)]
    windows, _ = run(events)
    assert [w["window_start"] for w in windows] == [midnight - MINUTE, midnight]
    assert [w["active_seconds"] for w in windows] == [20.0, 15.0]
