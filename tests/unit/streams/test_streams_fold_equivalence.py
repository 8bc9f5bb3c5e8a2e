"""The batch fold and its shortcuts give exactly what the event-by-event reducers give.

`DeviceActivity.fold` makes each event's Mark once and shares it between the
session and minute clocks, the reducers loop over a batch themselves, and the
hot paths take shortcuts (the in-order seq, action ids without `uuid.UUID`).
These tests hold them to the plain definitions: each reducer's `apply` per
event, `SeqLedger`'s own `in`/`add`, `uuid.uuid5`, and the geometry sums.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from producers.simulator.simulator import Simulator
from streams import actions, minutes, session
from streams.activity import ActivityConfig, DeviceActivity, Outputs, late_event, redact_merged
from streams.device_state import encode_state
from streams.geometry import append_path, path_length
from streams.keystrokes import withhold_typed
from streams.watermark import Admission, EventClock, Mark, SeqLedger, mark_of
from tests.unit.streams.streams_events import (
    HOUR,
    MINUTE,
    T0,
    Device,
    activity,
    click,
    command,
    key,
    move,
    scroll,
)

START = 1_760_000_000_000_000
SECOND = 1_000_000


def _device_streams(people: int, seed: int, seconds: float) -> dict[str, list[dict[str, Any]]]:
    """The simulator's events per device as the worker folds them (typed text withheld),
    reordered a little, with redeliveries and a few events held back past the
    grace (late), so the slow paths run too."""
    rng = random.Random(seed)
    per_device: dict[str, list[dict[str, Any]]] = {}
    for event in Simulator(people, seed, START).events(seconds):
        per_device.setdefault(event["device_id"], []).append(withhold_typed(dict(event)))
    for events in per_device.values():
        for i in range(len(events) - 1):
            if rng.random() < 0.05:  # a neighbour swap: out of order within the grace
                events[i], events[i + 1] = events[i + 1], events[i]
        for _ in range(len(events) // 40):
            j = rng.randrange(len(events))
            events.insert(j + rng.randrange(1, 60), events[j])  # a redelivery
        for _ in range(len(events) // 100):
            j = rng.randrange(len(events))
            events.insert(j + rng.randrange(100, 400), events.pop(j))  # held back
    return per_device


def _chunks(events: list[dict[str, Any]], rng: random.Random) -> Iterator[list[dict[str, Any]]]:
    i = 0
    while i < len(events):
        n = rng.choice((1, 2, 5, 8, 13, 40))
        yield events[i : i + n]
        i += n


def _fold_event_by_event(
    state: DeviceActivity, events: list[dict[str, Any]], now: int, cfg: ActivityConfig
) -> Outputs:
    """What `DeviceActivity.fold` is defined as: each reducer's `apply`, one event at a time."""
    out = Outputs()
    redact = out.counting(redact_merged)
    for event in events:
        state.session, closed, late_s = session.apply(state.session, event, cfg.session, now)
        state.minutes, emitted, late_m = minutes.apply(state.minutes, event, cfg.minutes, now)
        state.actions, done, _ = actions.apply(state.actions, event, cfg.actions, now, redact)
        out.sessions += closed
        out.minutes += emitted
        out.actions += done
        out.late += [late_event(e, "session", now) for e in late_s]
        out.late += [late_event(e, "minutes", now) for e in late_m]
    # fold lists the session stage's late events before the minutes' of a batch
    out.late.sort(key=lambda record: record["stage"] != "session")
    return out


def _as_json(out: Outputs) -> str:
    return json.dumps(
        [out.sessions, out.minutes, out.actions, out.late, sorted(out.redactions.items())],
        sort_keys=True,
    )


def test_batch_fold_equals_event_by_event_apply_on_simulator_workloads() -> None:
    cfg = ActivityConfig()
    for seed in (3, 8):
        rng = random.Random(seed)
        for events in _device_streams(people=4, seed=seed, seconds=2400).values():
            batched, single = DeviceActivity(), DeviceActivity()
            now = START
            for chunk in _chunks(events, rng):
                now = max(now, max(e["ts"] for e in chunk)) + rng.randrange(2 * SECOND)
                got = batched.fold(chunk, now, cfg)
                want = _fold_event_by_event(single, chunk, now, cfg)
                assert _as_json(got) == _as_json(want)
                assert encode_state(batched) == encode_state(single)
            later = now + 3600 * SECOND
            assert _as_json(batched.tick(later, cfg)) == _as_json(single.tick(later, cfg))
            assert encode_state(batched) == encode_state(single)


def test_apply_many_given_marks_equals_apply_many_making_them() -> None:
    cfg = ActivityConfig()
    events = next(iter(_device_streams(people=1, seed=5, seconds=600).values()))
    marks = [mark_of(e) for e in events]
    given_s = session.apply_many(None, events, cfg.session, START, marks)
    made_s = session.apply_many(None, iter(events), cfg.session, START)
    assert given_s[1:] == made_s[1:]
    assert given_s[0] is not None and made_s[0] is not None
    assert given_s[0].to_dict() == made_s[0].to_dict()
    given_m = minutes.apply_many(None, events, cfg.minutes, START, marks)
    made_m = minutes.apply_many(None, iter(events), cfg.minutes, START)
    assert given_m[1:] == made_m[1:]
    assert given_m[0] is not None and made_m[0] is not None
    assert given_m[0].to_dict() == made_m[0].to_dict()


SESSION_CFG = session.SessionConfig(gap_micros=5 * MINUTE, max_length_micros=HOUR)
MINUTE_CFG = minutes.MinuteConfig()
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
def arrivals(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One device's events as they arrive: up to 2 minutes of jitter (so out of
    order, and late past the 30 s grace) and some redeliveries."""
    device, ts, ordered = Device(), T0, []
    for i in draw(st.lists(st.integers(0, len(PAYLOADS) - 1), max_size=80)):
        ts += draw(gaps)
        ordered.append(device.event(ts, PAYLOADS[i], app=draw(st.sampled_from("ab"))))
    jitter = draw(st.lists(st.integers(0, 2 * MINUTE), min_size=len(ordered)))
    arrival = sorted(ordered, key=lambda e: e["ts"] + jitter[int(e["seq"]) - 1])
    for position in draw(st.lists(st.integers(0, max(0, len(arrival) - 1)), max_size=10)):
        if arrival:
            arrival.insert(min(len(arrival), position + 3), arrival[position])
    return arrival


@settings(max_examples=300, deadline=None)
@given(arrivals(), st.lists(st.integers(1, 12), min_size=1), st.booleans())
def test_batched_reducers_equal_event_by_event_apply(
    arrival: list[dict[str, Any]], sizes: list[int], timers: bool
) -> None:
    """Out of order, late, duplicate, idle/locked and gap-sized input, cut into
    batches, with timer closes between some of them."""
    s_batched = s_single = m_batched = m_single = None
    i, now = 0, T0
    for n in itertools.cycle(sizes):
        if i >= len(arrival):
            break
        chunk = arrival[i : i + n]
        i += n
        now = max(now, max(e["ts"] for e in chunk))
        s_batched, closed, late = session.apply_many(s_batched, chunk, SESSION_CFG, now)
        m_batched, emitted, m_late = minutes.apply_many(m_batched, chunk, MINUTE_CFG, now)
        want_closed, want_late, want_emitted, want_m_late = [], [], [], []
        for event in chunk:
            s_single, c, lt = session.apply(s_single, event, SESSION_CFG, now)
            m_single, e, ml = minutes.apply(m_single, event, MINUTE_CFG, now)
            want_closed += c
            want_late += lt
            want_emitted += e
            want_m_late += ml
        assert (closed, late, emitted, m_late) == (
            want_closed,
            want_late,
            want_emitted,
            want_m_late,
        )
        assert s_batched is not None and s_single is not None
        assert m_batched is not None and m_single is not None
        if timers and i % 3 == 0:
            now += 20 * MINUTE
            assert (
                session.on_timer(s_batched, now, SESSION_CFG)[1]
                == (session.on_timer(s_single, now, SESSION_CFG)[1])
            )
            assert (
                minutes.on_timer(m_batched, now, MINUTE_CFG)[1]
                == (minutes.on_timer(m_single, now, MINUTE_CFG)[1])
            )
        assert s_batched.to_dict() == s_single.to_dict()
        assert m_batched.to_dict() == m_single.to_dict()


# -- the in-order shortcut of the seq ledgers ----------------------------------------------


def _reference_admit(
    clock: EventClock, mark: Mark, now: int, grace: int, max_ranges: int
) -> Admission:
    """`EventClock.admit` as defined: SeqLedger's `in` and `add`, no shortcut."""
    ledger = clock.ledgers.get(mark.device_id)
    if ledger is None:
        ledger = clock.ledgers[mark.device_id] = SeqLedger()
    elif mark.seq in ledger:
        if clock.max_ts is None or mark.ts <= clock.max_ts:
            return Admission.DUPLICATE
        ledger.clear()
    ledger.add(mark.seq, max_ranges)
    if clock.last_wall is None or now > clock.last_wall:
        clock.last_wall = now
    if clock.floor is not None and mark.ts < clock.floor:
        return Admission.LATE
    clock.pending.append(mark)
    clock.pending.sort()
    if clock.max_ts is None or mark.ts > clock.max_ts:
        clock.max_ts = mark.ts
        clock.raise_floor(mark.ts - grace)
    return Admission.PENDING


# mostly the next seq, sometimes a repeat, a step back, a jump or a renumbering
seq_steps = st.lists(
    st.tuples(
        st.sampled_from([1, 1, 1, 1, 0, -1, -3, 2, 5, "restart"]),
        st.integers(-20 * SECOND, 40 * SECOND),
        st.sampled_from(["d1", "d1", "d2"]),
    ),
    max_size=120,
)


def _walk(steps: Sequence[tuple[Any, int, str]]) -> Iterator[tuple[int, int, str]]:
    """``(seq, ts, device)`` of each step."""
    seqs = {"d1": 0, "d2": 0}
    ts = START
    for step, dt, device in steps:
        seqs[device] = 1 if step == "restart" else max(0, seqs[device] + step)
        ts += dt
        yield seqs[device], ts, device


@settings(max_examples=300, deadline=None)
@given(seq_steps, st.integers(1, 4))
def test_admit_equals_the_ledger_definition(
    steps: list[tuple[Any, int, str]], max_ranges: int
) -> None:
    fast, reference = EventClock(), EventClock()
    for i, (seq, ts, device) in enumerate(_walk(steps)):
        mark = Mark(ts, device, seq, "KeyInput", "editor", 1.0, None)
        now = START + i
        assert fast.admit(mark, now, 30 * SECOND, max_ranges) is _reference_admit(
            reference, mark, now, 30 * SECOND, max_ranges
        )
        assert fast.to_dict() == reference.to_dict()
        if i % 7 == 0:
            assert fast.drain() == reference.drain()


@settings(max_examples=300, deadline=None)
@given(seq_steps, st.integers(1, 4))
def test_action_reducer_takes_in_what_the_ledger_definition_takes_in(
    steps: list[tuple[Any, int, str]], max_ranges: int
) -> None:
    cfg = actions.ActionConfig(max_seq_ranges=max_ranges)
    state: actions.ActionState | None = None
    ledger, max_ts = SeqLedger(), None
    for seq, ts, _ in _walk(steps):
        event = _key_event(seq, ts)
        state, _, _ = actions.apply(state, event, cfg, START)
        if seq in ledger and (max_ts is None or ts <= max_ts):
            continue  # a duplicate: no change
        if seq in ledger:
            ledger.clear()
        ledger.add(seq, max_ranges)
        max_ts = ts if max_ts is None else max(max_ts, ts)
        assert state.ledger.ranges == ledger.ranges
        assert state.max_ts == max_ts
    assert state is None or state.ledger.ranges == ledger.ranges


def _key_event(seq: int, ts: int) -> dict[str, Any]:
    return {
        "event_id": f"e-{seq}-{ts}",
        "org_id": "org-1",
        "subject_id": "subj-1",
        "device_id": "d1",
        "seq": seq,
        "ts": ts,
        "received_ts": None,
        "app": {"app_name": "editor", "window_title": None, "url_host": None},
        "payload": {
            "type": "KeyInput",
            "key": "a",
            "text": None,
            "modifiers": [],
            "is_secure_field": False,
            "count": 1,
        },
        "redactions": [],
        "consent_version": 1,
    }


# -- ids and geometry -----------------------------------------------------------------------


@settings(max_examples=300)
@given(st.text())
def test_action_ids_are_uuid5_in_the_actions_namespace(first_event_id: str) -> None:
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "candor:training.actions")
    assert actions.action_id(first_event_id) == str(uuid.uuid5(namespace, first_event_id))


points = st.lists(
    st.fixed_dictionaries(
        {"dt_ms": st.integers(0, 5000), "x": st.integers(-5000, 5000), "y": st.integers(-5, 5000)}
    ),
    max_size=30,
)


@given(points)
def test_path_length_is_the_sum_of_its_segments_in_order(path: list[dict[str, int]]) -> None:
    total = 0.0
    for a, b in itertools.pairwise(path):
        total += math.hypot(b["x"] - a["x"], b["y"] - a["y"])
    assert path_length(path) == total


@given(points, points, st.integers(0, 10 * SECOND), st.integers(0, 10 * SECOND))
def test_append_path_copies_the_points_and_ends_after_their_delays(
    merged: list[dict[str, int]], path: list[dict[str, int]], end: int, ts: int
) -> None:
    before = [dict(p) for p in merged]
    new_end = append_path(merged, end, path, ts)
    if not path:
        assert merged == before and new_end == end
        return
    first_ts = max(ts, end) if before else ts
    first_dt = (first_ts - end) // 1000 if before else 0
    assert merged == [*before, {**path[0], "dt_ms": first_dt}, *path[1:]]
    assert new_end == first_ts + sum(p["dt_ms"] for p in path[1:]) * 1000
    assert all(p is not q for p, q in zip(merged[len(before) :], path, strict=True))
