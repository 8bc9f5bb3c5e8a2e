"""Action reducer: typing, shortcuts, pointer, scroll, observations, dedupe, restarts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from streams import actions
from streams.actions import ActionConfig, ActionState, Redactor
from tests.unit.streams.streams_events import (
    HOUR,
    MINUTE,
    SECOND,
    T0,
    Device,
    activity,
    click,
    command,
    edit,
    focus,
    frame,
    key,
    move,
    scroll,
    through_json,
)

CFG = ActionConfig()
MS = 1000


def run(
    events: list[dict[str, Any]],
    redact: Redactor | None = None,
    restart_each: bool = False,
    cfg: ActionConfig = CFG,
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Reduce ``events`` in order, then flush the device with a timer."""
    state: ActionState | None = None
    out: list[dict[str, Any]] = []
    late: list[Any] = []
    for event in events:
        if restart_each:
            state = through_json(state, ActionState)
        state, done, too_late = actions.apply(state, event, cfg, event["ts"], redact)
        out += done
        late += too_late
    if state is not None:
        out += actions.on_timer(state, T0 + 1000 * HOUR, cfg, redact)[1]
    return out, late


def typed(*keys: str, gap: int = 100 * MS, app: str = "editor") -> list[dict[str, Any]]:
    device = Device()
    return [device.event(T0 + i * gap, key(k), app=app) for i, k in enumerate(keys)]


def summary(done: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(a["kind"], a["text"] if a["kind"] == "typing" else a["chord"]) for a in done]


def test_consecutive_keys_merge_into_one_typing_action() -> None:
    events = typed("h", "e", "l", "l", "o")
    (action,), late = run(events)
    assert (action["kind"], action["text"], action["event_count"]) == ("typing", "hello", 5)
    assert (action["start_ts"], action["end_ts"]) == (T0, T0 + 400 * MS)
    assert action["app_name"] == "editor" and action["window_title"] == "main.py"
    assert late == []


@pytest.mark.parametrize(
    ("pause", "texts"),
    [(2 * SECOND, ["ab"]), (2 * SECOND + 1, ["a", "b"])],
)
def test_a_pause_longer_than_the_threshold_splits_typing(pause: int, texts: list[str]) -> None:
    done, _ = run(typed("a", "b", gap=pause))
    assert [a["text"] for a in done] == texts


@pytest.mark.parametrize(
    ("keys", "text"),
    [
        (["a", "b", "Backspace", "c"], "ac"),
        (["a", "Backspace", "Backspace", "b"], "\bb"),  # deletes before the action stay visible
        (["Backspace", "x"], "\bx"),
        (["a", "Enter", "b", "Tab", "Space"], "a\nb\t "),
        (["Shift", "A"], "A"),  # a lone modifier press types nothing and breaks nothing
    ],
)
def test_backspace_and_text_keys_edit_the_merged_text(keys: list[str], text: str) -> None:
    (action,), _ = run(typed(*keys))
    assert action["text"] == text


def test_backspace_count_deletes_that_many_characters() -> None:
    device = Device()
    events = [
        device.event(T0, key(text="hello", count=5)),
        device.event(T0 + 1 * MS, key("Backspace", count=2)),
    ]
    (action,), _ = run(events)
    assert action["text"] == "hel"


@pytest.mark.parametrize(
    ("k", "mods", "expected"),
    [
        ("p", ("shift", "ctrl"), [("shortcut", "ctrl+shift+p")]),
        ("P", ("ctrl", "shift", "ctrl"), [("shortcut", "ctrl+shift+p")]),
        ("c", ("meta",), [("shortcut", "meta+c")]),
        ("F4", ("alt",), [("shortcut", "alt+f4")]),
        ("Escape", (), [("shortcut", "escape")]),
        ("Tab", ("shift",), [("shortcut", "shift+tab")]),
        ("A", ("shift",), [("typing", "A")]),
    ],
)
def test_chords(k: str, mods: tuple[str, ...], expected: list[tuple[str, str]]) -> None:
    device = Device()
    done, _ = run([device.event(T0, key(k, mods=mods))])
    assert summary(done) == expected


def test_a_shortcut_closes_typing_in_order() -> None:
    device = Device()
    events = [
        device.event(T0, key("a")),
        device.event(T0 + 1 * MS, key("s", mods=("ctrl",))),
        device.event(T0 + 2 * MS, key("b")),
    ]
    done, _ = run(events)
    assert summary(done) == [("typing", "a"), ("shortcut", "ctrl+s"), ("typing", "b")]


@pytest.mark.parametrize("switch", ["focus_event", "app_change"])
def test_a_focus_change_in_the_middle_of_typing_splits_it(switch: str) -> None:
    device = Device()
    events = [device.event(T0, key("a"), app="editor"), device.event(T0 + MS, key("b"))]
    if switch == "focus_event":
        events.append(device.event(T0 + 2 * MS, focus("editor"), app="browser", title="docs"))
    events += [
        device.event(T0 + 3 * MS, key("c"), app="browser", title="docs"),
        device.event(T0 + 4 * MS, key("d"), app="browser", title="docs"),
    ]
    done, _ = run(events)
    assert [(a["text"], a["app_name"], a["window_title"]) for a in done] == [
        ("ab", "editor", "main.py"),
        ("cd", "browser", "docs"),
    ]


def test_redact_runs_over_the_merged_text_across_chunks() -> None:
    def redact(text: str) -> tuple[str, tuple[str, ...]]:
        cleaned, hits = re.subn(r"password=\S+", "password=[REDACTED]", text)
        return cleaned, ("password_assignment",) if hits else ()

    device = Device()
    events = [
        device.event(T0, key(text="pass", count=4), redactions=["email"]),
        device.event(T0 + 10 * MS, key(text="word=hunter2", count=12)),
    ]
    (action,), _ = run(events, redact=redact)
    assert "hunter2" not in action["text"]
    assert action["text"] == "password=[REDACTED]"
    assert action["redactions"] == ["email", "password_assignment"]


@pytest.mark.parametrize(
    "payload", [key(None, None), key("a", secure=True), key(text="pw", count=2, secure=True)]
)
def test_withheld_or_secure_keystrokes_leave_no_text(payload: dict[str, Any]) -> None:
    device = Device()
    events = [device.event(T0, key("x")), device.event(T0 + MS, payload)]
    (action,), _ = run(events)
    assert (action["kind"], action["text"], action["event_count"]) == ("typing", None, 2)


@pytest.mark.parametrize(
    ("frame_at", "ref"),
    [
        (-5 * SECOND, "sha256:before"),
        (-1, "sha256:before"),
        (0, None),  # a frame at the very start is not strictly before it
        (+1 * SECOND, None),  # frames after the start are never used
    ],
)
def test_observation_is_the_last_frame_strictly_before_the_start(
    frame_at: int, ref: str | None
) -> None:
    device = Device()
    events = [
        device.event(T0 - HOUR, frame("sha256:old")) if ref is None else None,
        device.event(T0 + frame_at, frame(ref or "sha256:after")),
        device.event(T0, key("a")),
        device.event(T0 + 2 * SECOND, key("b")),
    ]
    done, _ = run([e for e in events if e is not None])
    assert [a["observation_ref"] for a in done] == [ref or "sha256:old"]


def test_frames_do_not_break_typing_and_a_reordered_frame_still_counts() -> None:
    device = Device()
    first = device.event(T0, key("a"))
    reordered_frame = device.event(T0 - 10 * MS, frame("sha256:just-before"))
    events = [first, reordered_frame, device.event(T0 + MS, key("b"))]
    (action,), late = run(events)
    assert (action["text"], action["observation_ref"]) == ("ab", "sha256:just-before")
    assert late == []


@pytest.mark.parametrize(
    ("click_after_path", "click_at", "kind", "path_points"),
    [
        (300 * MS, (30, 40), "click", 3),  # path then a pause: a click carrying the path
        (1 * SECOND + 1, (30, 40), "click", 0),  # too long after the path: no path
        (10 * MS, (30, 40), "drag", 3),  # still moving at the click, far from the start
        (10 * MS, (5, 5), "click", 3),  # still moving, but back near the start
    ],
)
def test_pointer_paths_fold_into_the_next_click(
    click_after_path: int, click_at: tuple[int, int], kind: str, path_points: int
) -> None:
    device = Device()
    events = [
        device.event(T0, move((0, 0, 0), (20, 10, 10))),
        device.event(T0 + 50 * MS, move((0, 20, 20))),
        device.event(T0 + 50 * MS + click_after_path, click(*click_at)),
    ]
    (action,), _ = run(events)
    assert (action["kind"], len(action["path"]), (action["x"], action["y"])) == (
        kind,
        path_points,
        click_at,
    )
    if path_points:
        assert action["start_ts"] == T0
        assert action["event_count"] == 3
        assert action["path"] == [
            {"dt_ms": 0, "x": 0, "y": 0},
            {"dt_ms": 20, "x": 10, "y": 10},
            {"dt_ms": 30, "x": 20, "y": 20},
        ]


def test_path_without_a_click_is_dropped_and_moves_end_typing() -> None:
    device = Device()
    events = [
        device.event(T0, key("a")),
        device.event(T0 + MS, move((0, 1, 1))),
        device.event(T0 + 2 * MS, key("b")),
    ]
    done, _ = run(events)
    assert summary(done) == [("typing", "a"), ("typing", "b")]


@pytest.mark.parametrize(
    ("gap", "scrolls"), [(2 * SECOND, [(3, -12)]), (2 * SECOND + 1, [(1, -5), (2, -7)])]
)
def test_consecutive_scrolls_merge_until_a_pause(gap: int, scrolls: list[tuple[int, int]]) -> None:
    device = Device()
    events = [device.event(T0, scroll(1, -5)), device.event(T0 + gap, scroll(2, -7))]
    done, _ = run(events)
    assert [(a["kind"], a["dx"], a["dy"]) for a in done] == [("scroll", *s) for s in scrolls]


def test_commands_and_edits_are_single_actions_and_close_scrolls() -> None:
    device = Device()
    events = [
        device.event(T0, scroll(0, 1)),
        device.event(T0 + MS, command("git status")),
        device.event(T0 + 2 * MS, edit("+x = 1")),
    ]
    done, _ = run(events)
    assert [(a["kind"], a["command"], a["text"]) for a in done] == [
        ("scroll", None, None),
        ("command", "git status", None),
        ("edit", None, "+x = 1"),
    ]


def test_duplicates_and_restarts_neither_lose_nor_repeat_actions() -> None:
    device = Device()
    events = [device.event(T0 + i * 500 * MS, key("a")) for i in range(4)]
    events += [
        device.event(T0 + 5 * SECOND, click(1, 1)),
        device.event(T0 + 9 * SECOND, key("b")),
        device.event(T0 + 9 * SECOND + MS, key("c")),
    ]
    clean, _ = run(events)
    replayed, late = run(events[:5] + events[2:] + events[6:], restart_each=True)
    assert (replayed, late) == (clean, [])
    ids = [a["action_id"] for a in clean]
    assert len(set(ids)) == len(ids) == 3


def test_event_older_than_the_reduced_sequence_is_late() -> None:
    device = Device()
    early, later = device.event(T0, key("a")), device.event(T0 + MS, key("b"))
    done, late = run([later, early])
    assert late == [early]
    assert [a["text"] for a in done] == ["b"]


@pytest.mark.parametrize(("quiet", "flushed"), [(2 * SECOND - 1, []), (2 * SECOND, ["ab"])])
def test_timer_flushes_a_quiet_device(quiet: int, flushed: list[str]) -> None:
    state, _, _ = actions.apply_many(None, typed("a", "b", gap=MS), CFG, now_micros=T0)
    assert state is not None
    _, done = actions.on_timer(state, T0 + quiet, CFG)
    assert [a["text"] for a in done] == flushed


def test_session_hint_follows_the_sessionizer_rules() -> None:
    device = Device()
    events = [
        device.event(T0, command("a")),
        device.event(T0 + MINUTE, command("b")),
        device.event(T0 + 2 * MINUTE, activity("locked")),
        device.event(T0 + 3 * MINUTE, command("c")),
        device.event(T0 + 30 * MINUTE, command("d")),
    ]
    done, _ = run(events)
    starts = [T0, T0, T0 + 3 * MINUTE, T0 + 30 * MINUTE]
    assert [a["session_hint"] for a in done] == [f"subj-1:dev-1:{s}" for s in starts]
