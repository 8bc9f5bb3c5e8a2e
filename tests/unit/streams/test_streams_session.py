"""Sessionizer: boundaries, ordering, lateness, dedupe, restarts, timers, measures."""

from __future__ import annotations

import random
from typing import Any

import pytest

from streams import session
from streams.session import SessionConfig, SessionState
from tests.unit.streams.streams_events import (
    HOUR,
    MINUTE,
    SECOND,
    T0,
    Device,
    activity,
    click,
    command,
    focus,
    key,
    move,
    scroll,
    through_json,
)

CFG = SessionConfig()
FAR_FUTURE = T0 + 1000 * HOUR


def run(
    events: list[dict[str, Any]], cfg: SessionConfig = CFG, restart_each: bool = False
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Feed ``events`` in order, then let a timer close what is left."""
    state: SessionState | None = None
    sessions: list[dict[str, Any]] = []
    late: list[Any] = []
    for event in events:
        if restart_each:
            state = through_json(state, SessionState)
        state, closed, too_late = session.apply(state, event, cfg, now_micros=event["ts"])
        sessions += closed
        late += too_late
    if state is not None:
        sessions += session.on_timer(state, FAR_FUTURE, cfg)[1]
    return sessions, late


def spaced(offsets: list[int], payload: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    device = Device()
    return [device.event(T0 + off, payload or key("a")) for off in offsets]


@pytest.mark.parametrize(
    ("second_after", "expected_starts", "reasons"),
    [
        (15 * MINUTE, [T0], ["timer"]),  # a gap of exactly the threshold keeps the session
        (15 * MINUTE + 1, [T0, T0 + 15 * MINUTE + 1], ["gap", "timer"]),  # just over splits
        (2 * HOUR, [T0, T0 + 2 * HOUR], ["gap", "timer"]),
    ],
)
def test_inactivity_gap_boundary(
    second_after: int, expected_starts: list[int], reasons: list[str]
) -> None:
    sessions, late = run(spaced([0, second_after]))
    assert [s["start_ts"] for s in sessions] == expected_starts
    assert [s["end_reason"] for s in sessions] == reasons
    assert late == []


def test_session_id_is_deterministic_from_subject_device_and_start() -> None:
    sessions, _ = run(spaced([0, MINUTE]))
    assert sessions[0]["session_id"] == f"subj-1:dev-1:{T0}"
    assert (sessions[0]["start_ts"], sessions[0]["end_ts"]) == (T0, T0 + MINUTE)


def test_max_length_splits_a_long_session() -> None:
    cfg = SessionConfig(max_length_micros=HOUR)
    # one event every 10 minutes for 2.5 hours: never a gap, but over the max length
    sessions, _ = run(spaced([i * 10 * MINUTE for i in range(16)]), cfg)
    assert [s["end_reason"] for s in sessions] == ["max_length", "max_length", "timer"]
    assert [s["start_ts"] - T0 for s in sessions] == [0, 70 * MINUTE, 140 * MINUTE]
    assert all(s["end_ts"] - s["start_ts"] <= HOUR for s in sessions)
    assert sum(s["event_ids_count"] for s in sessions) == 16


@pytest.mark.parametrize(
    ("state", "reasons"),
    [("idle", ["idle", "timer"]), ("locked", ["locked", "timer"]), ("active", ["timer"])],
)
def test_activity_state_ends_the_session(state: str, reasons: list[str]) -> None:
    device = Device()
    events = [
        device.event(T0, key("a")),
        device.event(T0 + MINUTE, activity(state)),
        device.event(T0 + 2 * MINUTE, key("b")),
    ]
    sessions, _ = run(events)
    assert [s["end_reason"] for s in sessions] == reasons
    if state != "active":
        assert sessions[0]["end_ts"] == T0 + MINUTE  # the state change is the last event
        assert sessions[0]["event_counts"] == {"KeyInput": 1, "ActivityState": 1}
        assert sessions[1]["start_ts"] == T0 + 2 * MINUTE


@pytest.mark.parametrize("step", [MINUTE, 5 * MINUTE])
def test_midnight_does_not_split_a_session(step: int) -> None:
    midnight = (T0 // (24 * HOUR) + 1) * 24 * HOUR
    device = Device()
    events = [
        device.event(midnight - 30 * MINUTE + i * step, key("a")) for i in range(HOUR // step + 1)
    ]
    sessions, _ = run(events)
    assert len(sessions) == 1
    assert sessions[0]["start_ts"] < midnight < sessions[0]["end_ts"]


def test_gap_across_midnight_still_splits_by_gap_only() -> None:
    midnight = (T0 // (24 * HOUR) + 1) * 24 * HOUR
    sessions, _ = run(spaced([midnight - T0 - 10 * MINUTE, midnight - T0 + 6 * MINUTE]))
    assert [s["end_reason"] for s in sessions] == ["gap", "timer"]


def test_measures_of_a_session() -> None:
    device = Device()
    events = [
        device.event(T0, key(text="hello", count=5), app="editor"),
        device.event(T0 + 10 * SECOND, move((0, 0, 0), (8, 3, 4), (8, 6, 8)), app="editor"),
        device.event(T0 + 20 * SECOND, click(6, 8), app="editor"),
        device.event(T0 + 30 * SECOND, focus("editor"), app="terminal"),
        device.event(T0 + 40 * SECOND, command("ls"), app="terminal"),
        device.event(T0 + 3 * MINUTE, scroll(0, -3), app="terminal"),  # after a 140 s pause
        device.event(T0 + 3 * MINUTE + 5 * SECOND, key("x", count=2), app="terminal"),
    ]
    (only,), _ = run(events)
    assert only["event_counts"] == {
        "KeyInput": 2,
        "MouseMove": 1,
        "MouseClick": 1,
        "WindowFocus": 1,
        "TerminalCommand": 1,
        "Scroll": 1,
    }
    assert only["event_ids_count"] == 7
    assert (only["keystrokes"], only["clicks"], only["scrolls"], only["commands_run"]) == (
        7,
        1,
        1,
        1,
    )
    assert only["mouse_distance_px"] == pytest.approx(10.0)
    # intervals: 10,10,10 (editor) 10,140,5 (terminal); 140 s is over the 60 s threshold
    assert only["active_seconds"] == pytest.approx(45.0)
    assert only["app_seconds"] == pytest.approx({"editor": 30.0, "terminal": 155.0})


def test_app_seconds_are_capped_at_the_gap() -> None:
    cfg = SessionConfig(gap_micros=10 * MINUTE)
    sessions, _ = run(spaced([0, 10 * MINUTE]), cfg)
    assert sessions[0]["app_seconds"] == {"editor": 600.0}
    assert sessions[0]["active_seconds"] == 0.0


def test_out_of_order_within_grace_folds_like_in_order() -> None:
    device = Device()
    ordered = [device.event(T0 + i * 7 * SECOND, key("a"), app=f"app{i % 3}") for i in range(60)]
    shuffled = list(ordered)
    rng = random.Random(7)
    # swap neighbours: at most 7 s out of order, inside the 30 s grace
    for i in range(0, len(shuffled) - 1, 2):
        if rng.random() < 0.7:
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    assert shuffled != ordered
    assert run(shuffled) == run(ordered)


def test_out_of_order_event_within_grace_bridges_a_gap() -> None:
    device = Device()
    first = device.event(T0, key("a"))
    bridge = device.event(T0 + 14 * MINUTE + 59 * SECOND, key("b"))
    after = device.event(T0 + 15 * MINUTE + 10 * SECOND, key("c"))
    sessions, late = run([first, after, bridge])  # the bridge arrives last, 11 s behind
    assert late == []
    assert [s["event_ids_count"] for s in sessions] == [3]


@pytest.mark.parametrize(
    ("behind", "is_late"),
    [(29 * SECOND, False), (30 * SECOND, False), (30 * SECOND + 1, True), (10 * MINUTE, True)],
)
def test_events_behind_the_watermark_are_late(behind: int, is_late: bool) -> None:
    device = Device()
    head = device.event(T0 + 20 * MINUTE, key("a"))
    straggler = device.event(T0 + 20 * MINUTE - behind, key("b"))
    events = [device.event(T0, key("z")), head, straggler]
    sessions, late = run(events)
    assert late == ([straggler] if is_late else [])
    assert sum(s["event_ids_count"] for s in sessions) + len(late) == 3


def test_event_of_a_timer_closed_session_is_late() -> None:
    device = Device()
    state, _, _ = session.apply(None, device.event(T0, key("a")), CFG, now_micros=T0)
    state, closed = session.on_timer(state, T0 + 15 * MINUTE + 30 * SECOND, CFG)
    assert [s["end_reason"] for s in closed] == ["timer"]
    joining = device.event(T0 + 5 * MINUTE, key("b"))  # would have joined the closed session
    state, more, late = session.apply(state, joining, CFG, now_micros=T0 + 16 * MINUTE)
    assert (more, late) == ([], [joining])
    fresh = device.event(T0 + 16 * MINUTE, key("c"))
    state, more, late = session.apply(state, fresh, CFG, now_micros=T0 + 16 * MINUTE)
    assert late == []
    _, closed = session.on_timer(state, FAR_FUTURE, CFG)
    assert [s["start_ts"] for s in closed] == [T0 + 16 * MINUTE]


@pytest.mark.parametrize(
    ("quiet_for", "closes"),
    [(15 * MINUTE + 29 * SECOND, False), (15 * MINUTE + 30 * SECOND, True)],
)
def test_timer_closes_only_quiet_devices(quiet_for: int, closes: bool) -> None:
    device = Device()
    state, _, _ = session.apply(None, device.event(T0, key("a")), CFG, now_micros=T0)
    _, closed = session.on_timer(state, T0 + quiet_for, CFG)
    assert [s["end_reason"] for s in closed] == (["timer"] if closes else [])


def test_duplicate_event_counts_once_and_changes_nothing() -> None:
    device = Device()
    first = device.event(T0, key(text="ab", count=2))
    state, _, _ = session.apply(None, first, CFG)
    before = state.to_dict()
    state, closed, late = session.apply(state, dict(first), CFG)
    assert (closed, late) == ([], [])
    assert state.to_dict() == before
    sessions, _ = run([first, first, device.event(T0 + SECOND, key("c")), first])
    assert sessions[0]["event_ids_count"] == 2
    assert sessions[0]["keystrokes"] == 3


def test_redelivery_after_restart_neither_loses_nor_re_emits() -> None:
    device = Device()
    offsets = [0, 1, 2, 40, 41, 100, 101, 102, 300, 301]
    events = [device.event(T0 + off * MINUTE // 4, key("a")) for off in offsets]
    expected, expected_late = run(events)
    assert len(expected) > 1
    # crash after event 6; the restarted worker resumes from an older offset (event 3)
    state: SessionState | None = None
    out: list[dict[str, Any]] = []
    for event in events[:7]:
        state, closed, _ = session.apply(state, event, CFG, now_micros=event["ts"])
        out += closed
    state = through_json(state, SessionState)
    for event in events[3:]:
        state, closed, _ = session.apply(state, event, CFG, now_micros=event["ts"])
        out += closed
    _, closed = session.on_timer(state, FAR_FUTURE, CFG)
    assert out + closed == expected
    assert expected_late == []


def test_state_survives_json_between_every_event() -> None:
    device = Device()
    events = [device.event(T0 + i * 50 * SECOND, key("a")) for i in range(40)]
    events[5], events[6] = events[6], events[5]
    assert run(events, restart_each=True) == run(events)


def test_device_that_restarts_its_numbering_is_not_mistaken_for_duplicates() -> None:
    old = Device()
    reinstalled = Device()  # same device id, numbering starts over
    events = [old.event(T0 + i * SECOND, key("a")) for i in range(3)]
    events += [reinstalled.event(T0 + MINUTE + i * SECOND, key("b")) for i in range(3)]
    sessions, late = run(events)
    assert sum(s["event_ids_count"] for s in sessions) == 6
    assert late == []


def test_event_at_the_same_instant_as_the_lock_stays_in_the_locked_session() -> None:
    device = Device()
    events = [
        device.event(T0, activity("locked")),
        device.event(T0, key("a")),  # same microsecond, later seq
        device.event(T0 + SECOND, key("b")),
    ]
    sessions, _ = run(events)
    assert [(s["start_ts"], s["event_ids_count"], s["end_reason"]) for s in sessions] == [
        (T0, 2, "locked"),
        (T0 + SECOND, 1, "timer"),
    ]
    assert len({s["session_id"] for s in sessions}) == 2


def test_timer_keeps_the_idle_reason_of_a_session_that_idled() -> None:
    device = Device()
    state, closed, _ = session.apply(None, device.event(T0, activity("idle")), CFG, T0)
    assert closed == []  # an event of the same instant may still join
    _, closed = session.on_timer(state, T0 + HOUR, CFG)
    assert [s["end_reason"] for s in closed] == ["idle"]


@pytest.mark.parametrize(
    ("pause", "active"), [(MINUTE, 60.0), (MINUTE + 1, 0.0), (59 * SECOND, 59.0)]
)
def test_a_pause_counts_as_active_up_to_the_threshold(pause: int, active: float) -> None:
    sessions, _ = run(spaced([0, pause]))
    assert sessions[0]["active_seconds"] == active
    assert sessions[0]["app_seconds"] == {"editor": pause / SECOND}
