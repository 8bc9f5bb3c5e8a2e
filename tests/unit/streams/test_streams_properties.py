"""Properties over random event streams: nothing lost, nothing counted twice, order-free."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import actions, minutes, session
from streams.actions import ActionConfig, ActionState
from streams.minutes import MinuteConfig, MinuteState
from streams.session import SessionConfig, SessionState
from streams.watermark import SeqLedger
from tests.unit.streams.streams_events import (
    HOUR,
    MINUTE,
    SECOND,
    T0,
    Device,
    activity,
    click,
    command,
    key,
    move,
    scroll,
)

FAR_FUTURE = T0 + 10_000 * HOUR
SESSION_CFG = SessionConfig(gap_micros=5 * MINUTE, max_length_micros=HOUR, grace_micros=30 * SECOND)
MINUTE_CFG = MinuteConfig()
ACTION_CFG = ActionConfig()

PAYLOADS = [
    key("a"),
    key(text="hello", count=5),
    key("s", mods=("ctrl",)),
    key("Backspace"),
    move((0, 0, 0), (16, 3, 4)),
    click(1, 2),
    scroll(0, 3),
    command("ls"),
    activity("idle"),
    activity("locked"),
    activity("active"),
]
gaps = st.one_of(
    st.integers(0, 5 * SECOND),
    st.integers(0, 3 * MINUTE),
    st.integers(4 * MINUTE, 6 * MINUTE),
    st.sampled_from([5 * MINUTE, 5 * MINUTE + 1, 2 * HOUR]),
)


@st.composite
def streams(draw: st.DrawFn, max_jitter: int = 2 * MINUTE) -> tuple[list[Any], list[Any]]:
    """Return ``(ordered events, arrival order with jitter and duplicates)``."""
    device = Device()
    ts = T0
    ordered = []
    for payload_index in draw(st.lists(st.integers(0, len(PAYLOADS) - 1), max_size=80)):
        ts += draw(gaps)
        ordered.append(device.event(ts, PAYLOADS[payload_index], app=draw(st.sampled_from("ab"))))
    jitter = draw(
        st.lists(st.integers(0, max_jitter), min_size=len(ordered), max_size=len(ordered))
    )
    arrival = [
        e
        for _, e in sorted(
            zip([e["ts"] + j for e, j in zip(ordered, jitter, strict=True)], ordered, strict=True),
            key=lambda p: p[0],
        )
    ]
    for position in draw(st.lists(st.integers(0, max(0, len(arrival) - 1)), max_size=10)):
        if arrival:
            arrival.insert(min(len(arrival), position + 3), arrival[position])
    return ordered, arrival


def run_sessions(events: list[Any], restart_every: int = 0) -> tuple[list[Any], list[Any]]:
    state: SessionState | None = None
    out: list[Any] = []
    late: list[Any] = []
    for i, event in enumerate(events):
        if restart_every and state is not None and i % restart_every == 0:
            state = SessionState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, closed, too_late = session.apply(state, event, SESSION_CFG, event["ts"])
        out += closed
        late += too_late
    if state is not None:
        out += session.on_timer(state, FAR_FUTURE, SESSION_CFG)[1]
    return out, late


@settings(max_examples=200, deadline=None)
@given(streams())
def test_every_session_event_is_in_one_session_or_late(data: tuple[list[Any], list[Any]]) -> None:
    ordered, arrival = data
    sessions, late = run_sessions(arrival)
    assert sum(s["event_ids_count"] for s in sessions) + len(late) == len(ordered)
    assert sum(sum(s["event_counts"].values()) for s in sessions) + len(late) == len(ordered)
    assert len({s["session_id"] for s in sessions}) == len(sessions)
    for s in sessions:
        assert s["end_ts"] - s["start_ts"] <= SESSION_CFG.max_length_micros
        assert 0 <= s["active_seconds"] <= (s["end_ts"] - s["start_ts"]) / 1e6
    spans = sorted((s["start_ts"], s["end_ts"]) for s in sessions)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))


@settings(max_examples=100, deadline=None)
@given(streams(max_jitter=SESSION_CFG.grace_micros))
def test_sessions_do_not_depend_on_arrival_order_within_grace(
    data: tuple[list[Any], list[Any]],
) -> None:
    ordered, arrival = data
    assert run_sessions(arrival) == run_sessions(ordered)


@settings(max_examples=100, deadline=None)
@given(streams(), st.integers(1, 7))
def test_sessions_survive_restarts(data: tuple[list[Any], list[Any]], every: int) -> None:
    _, arrival = data
    assert run_sessions(arrival, restart_every=every) == run_sessions(arrival)


def run_minutes(events: list[Any], restart_every: int = 0) -> tuple[list[Any], list[Any]]:
    state: MinuteState | None = None
    out: list[Any] = []
    late: list[Any] = []
    for i, event in enumerate(events):
        if restart_every and state is not None and i % restart_every == 0:
            state = MinuteState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, emitted, too_late = minutes.apply(state, event, MINUTE_CFG, event["ts"])
        out += emitted
        late += too_late
    if state is not None:
        out += minutes.on_timer(state, FAR_FUTURE, MINUTE_CFG)[1]
    return out, late


@settings(max_examples=200, deadline=None)
@given(streams(), st.integers(0, 5))
def test_minute_windows_are_emitted_once_and_hold_every_event(
    data: tuple[list[Any], list[Any]], every: int
) -> None:
    ordered, arrival = data
    windows, late = run_minutes(arrival, restart_every=every)
    assert sum(w["events"] for w in windows) + len(late) == len(ordered)
    starts = [w["window_start"] for w in windows]
    assert len(set(starts)) == len(starts)
    for w in windows:
        assert w["window_start"] % MINUTE == 0
        assert 0 <= w["active_seconds"] <= 60.0
        assert abs(sum(w["app_seconds"].values()) - w["active_seconds"]) < 1e-6
    assert (windows, late) == run_minutes(arrival)


@settings(max_examples=200, deadline=None)
@given(streams(max_jitter=0), st.integers(0, 5))
def test_typing_and_single_actions_account_for_every_event(
    data: tuple[list[Any], list[Any]], every: int
) -> None:
    _, arrival = data
    kept = [e for e in arrival if e["payload"]["type"] not in ("MouseMove", "ActivityState")]
    state: ActionState | None = None
    done: list[Any] = []
    for i, event in enumerate(kept):
        if every and state is not None and i % every == 0:
            state = ActionState.from_dict(json.loads(json.dumps(state.to_dict())))
        state, out, late = actions.apply(state, event, ACTION_CFG, event["ts"])
        assert late == []
        done += out
    if state is not None:
        done += actions.on_timer(state, FAR_FUTURE, ACTION_CFG)[1]
    distinct = {e["event_id"] for e in kept}
    assert sum(a["event_count"] for a in done) == len(distinct)
    assert len({a["action_id"] for a in done}) == len(done)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=150))
def test_seq_ledger_holds_exactly_what_was_added(seqs: list[int]) -> None:
    ledger = SeqLedger()
    seen: set[int] = set()
    for seq in seqs:
        assert (seq in ledger) == (seq in seen)
        if seq not in seen:
            ledger.add(seq, max_ranges=1000)
            seen.add(seq)
    assert all((s in ledger) == (s in seen) for s in range(-1, 202))
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ledger.ranges))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 500), max_size=150, unique=True), st.integers(1, 6))
def test_bounded_seq_ledger_forgets_nothing_it_was_given(seqs: list[int], cap: int) -> None:
    ledger = SeqLedger()
    for seq in seqs:
        ledger.add(seq, max_ranges=cap)
        assert len(ledger.ranges) <= cap
    assert all(seq in ledger for seq in seqs)
