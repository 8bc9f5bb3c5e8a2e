"""The desktop agent's pure core: typing chunks, privacy, pointer paths, focus, idle, pause.

(Lives beside the gateway tests because the agent's engineer owns this directory.)"""

from __future__ import annotations

from typing import Any

import pytest

from producers.agent.keyboard import Key, KeyChunker, translate_key
from producers.agent.privacy import PauseSwitch, PrivacyPolicy
from producers.agent.recorder import (
    Capture,
    Clicked,
    KeyDown,
    KeyUp,
    PointerMoved,
    Recorder,
    RecorderConfig,
    Scrolled,
)
from schemas.codec import encode_event

T0 = 1_760_000_000_000_000
MS = 1000


def typed(recorder: Recorder, text: str, ts: int = T0) -> list[Capture]:
    out: list[Capture] = []
    for i, char in enumerate(text):
        out += recorder.feed(KeyDown(Key(char=char)), ts + i * 50 * MS)
        recorder.feed(KeyUp(Key(char=char)), ts + i * 50 * MS + 1)
    return out


def payloads(captures: list[Capture]) -> list[dict[str, Any]]:
    return [c.payload for c in captures]


def started(app: str = "xterm", title: str | None = "bash", **config: Any) -> Recorder:
    recorder = Recorder(PrivacyPolicy(), RecorderConfig(**config))
    recorder.start(T0 - 1, app, title)
    return recorder


@pytest.mark.parametrize(
    ("special", "char", "key"),
    [
        ("ctrl_l", None, Key(name="ctrl")),
        ("alt_gr", None, Key(name="alt")),
        ("cmd", None, Key(name="meta")),
        ("shift_r", None, Key(name="shift")),
        ("enter", None, Key(name="Enter")),
        ("space", None, Key(char=" ")),
        ("f5", None, Key(name="F5")),
        (None, "a", Key(char="a")),
        (None, "\x13", Key(char="s")),
        (None, None, None),
        (None, "\x7f", None),
    ],
)
def test_translate_key(special: str | None, char: str | None, key: Key | None) -> None:
    assert translate_key(special, char) == key


def test_typing_is_merged_into_chunks_ended_by_enter() -> None:
    recorder = started()
    out = typed(recorder, "ls -la")
    assert out == []
    out = recorder.feed(KeyDown(Key(name="Enter")), T0 + 1_000 * MS)
    assert [(p["text"], p["key"], p["count"]) for p in payloads(out)] == [
        ("ls -la", None, 6),
        (None, "Enter", 1),
    ]
    assert out[0].ts == T0


@pytest.mark.parametrize(
    ("max_chunk", "chunks"), [(4, ["abcd", "efgh", "ij"]), (32, ["abcdefghij"])]
)
def test_chunks_are_capped(max_chunk: int, chunks: list[str]) -> None:
    recorder = started(max_chunk=max_chunk)
    out = typed(recorder, "abcdefghij") + recorder.flush()
    assert [p["text"] for p in payloads(out)] == chunks


def test_a_typing_pause_flushes_the_chunk() -> None:
    recorder = started(text_flush_after_s=1.0)
    typed(recorder, "hi")
    assert recorder.tick(T0 + 500 * MS) == []
    assert [p["text"] for p in payloads(recorder.tick(T0 + 1_100 * MS))] == ["hi"]


def test_chords_are_single_keys_with_their_modifiers() -> None:
    recorder = started()
    out = typed(recorder, "x")
    out += recorder.feed(KeyDown(Key(name="ctrl")), T0 + 200 * MS)
    out += recorder.feed(KeyDown(Key(name="shift")), T0 + 201 * MS)
    out += recorder.feed(KeyDown(Key(char="P")), T0 + 202 * MS)
    recorder.feed(KeyUp(Key(name="ctrl")), T0 + 203 * MS)
    recorder.feed(KeyUp(Key(name="shift")), T0 + 203 * MS)
    out += typed(recorder, "y", T0 + 300 * MS) + recorder.flush()
    assert [(p["key"], p["text"], p["modifiers"]) for p in payloads(out)] == [
        (None, "x", []),
        ("p", None, ["ctrl", "shift"]),
        (None, "y", []),
    ]


@pytest.mark.parametrize(
    ("app", "title", "secure", "sent_title"),
    [
        ("KeePassXC", "vault.kdbx", True, None),
        ("org.bitwarden.desktop", "Bitwarden", True, None),
        ("firefox", "Sign in - enter your password", True, "Sign in - enter your password"),
        ("xterm", "[sudo] password for ana", True, "[sudo] password for ana"),
        ("xterm", "bash", False, "bash"),
    ],
)
def test_secure_windows_send_counts_without_content(
    app: str, title: str, secure: bool, sent_title: str | None
) -> None:
    recorder = started(app, title)
    out = typed(recorder, "hunter2") + recorder.feed(KeyDown(Key(name="Enter")), T0 + MS * 900)
    assert [(p["text"], p["key"], p["is_secure_field"], p["count"]) for p in payloads(out)] == (
        [(None, None, True, 7), (None, None, True, 1)]
        if secure
        else [("hunter2", None, False, 7), (None, "Enter", False, 1)]
    )
    assert {c.app["window_title"] for c in out} == {sent_title}


def test_focus_change_flushes_typing_into_the_old_window_and_says_where_from() -> None:
    recorder = started("xterm", "bash")
    typed(recorder, "abc")
    out = recorder.focus("keepassxc", "vault", T0 + 500 * MS)
    assert [(c.payload["type"], c.app["app_name"]) for c in out] == [
        ("KeyInput", "xterm"),
        ("WindowFocus", "keepassxc"),
    ]
    assert out[0].payload["text"] == "abc"
    assert out[1].payload["previous_app_name"] == "xterm" and out[1].app["window_title"] is None
    assert recorder.focus("keepassxc", "vault", T0 + 600 * MS) == []


def test_pointer_motion_becomes_paths_cut_by_clicks_and_rest() -> None:
    recorder = started(path_flush_after_s=0.15)
    for i in range(3):
        recorder.feed(PointerMoved(10 * i, 5 * i), T0 + i * 10 * MS)
    out = recorder.feed(Clicked(20, 10, "left"), T0 + 40 * MS)
    assert [p["type"] for p in payloads(out)] == ["MouseMove", "MouseClick"]
    assert out[0].payload["path"] == [
        {"dt_ms": 0, "x": 0, "y": 0},
        {"dt_ms": 10, "x": 10, "y": 5},
        {"dt_ms": 10, "x": 20, "y": 10},
    ]
    recorder.feed(PointerMoved(1, 1), T0 + 100 * MS)
    assert recorder.tick(T0 + 200 * MS) == []
    assert payloads(recorder.tick(T0 + 300 * MS))[0]["path"] == [{"dt_ms": 0, "x": 1, "y": 1}]


@pytest.mark.parametrize(
    ("second", "gap_ms", "double"),
    [
        (Clicked(100, 100, "left"), 200, True),
        (Clicked(103, 98, "left"), 200, True),
        (Clicked(100, 100, "left"), 600, False),
        (Clicked(120, 100, "left"), 200, False),
        (Clicked(100, 100, "right"), 200, False),
    ],
)
def test_double_clicks(second: Clicked, gap_ms: int, double: bool) -> None:
    recorder = started()
    recorder.feed(Clicked(100, 100, "left"), T0)
    (click,) = recorder.feed(second, T0 + gap_ms * MS)
    assert click.payload["double"] is double


def test_idle_after_quiet_and_active_again_on_input() -> None:
    recorder = started(idle_after_s=60)
    recorder.feed(Scrolled(0, 3), T0)
    assert recorder.tick(T0 + 59_000 * MS) == []
    assert payloads(recorder.tick(T0 + 60_000 * MS)) == [{"type": "ActivityState", "state": "idle"}]
    assert recorder.tick(T0 + 90_000 * MS) == []
    out = recorder.feed(Scrolled(0, 1), T0 + 95_000 * MS)
    assert payloads(out) == [
        {"type": "ActivityState", "state": "active"},
        {"type": "Scroll", "dx": 0, "dy": 1},
    ]


def test_nothing_is_captured_while_paused() -> None:
    recorder = started()
    typed(recorder, "before")
    out = recorder.tick(T0 + 400 * MS, paused=True)
    assert [p["text"] for p in payloads(out)] == ["before"]  # typed before the pause: kept
    paused = typed(recorder, "secret", T0 + 500 * MS) + recorder.focus("other", None, T0 + MS)
    paused += recorder.feed(Clicked(1, 1, "left"), T0 + 900 * MS)
    paused += recorder.tick(T0 + 10**9, paused=True)
    assert paused == []
    out = recorder.tick(T0 + 2 * 10**9, paused=False) + typed(recorder, "after", T0 + 2 * 10**9)
    out += recorder.flush()
    assert [p.get("text", p.get("state")) for p in payloads(out)] == ["active", "after"]


def test_everything_the_recorder_emits_fits_the_contract() -> None:
    recorder = Recorder(PrivacyPolicy())
    out = recorder.start(T0, "xterm", None) + typed(recorder, "ok") + recorder.flush()
    out += recorder.feed(PointerMoved(1, 2), T0 + 1)
    out += recorder.feed(Clicked(1, 2, "middle"), T0 + 2)
    out += recorder.feed(Scrolled(-1, 2), T0 + 3) + recorder.focus("keepassxc", "v", T0 + 4)
    out += typed(recorder, "pw", T0 + 5) + recorder.tick(T0 + 10**9)
    for seq, capture in enumerate(out, 1):
        encode_event(
            {
                "event_id": "e",
                "org_id": "o",
                "subject_id": "s",
                "device_id": "d",
                "seq": seq,
                "ts": capture.ts,
                "received_ts": None,
                "app": capture.app,
                "payload": capture.payload,
                "redactions": [],
                "consent_version": None,
            }
        )
    assert {c.payload["type"] for c in out} >= {
        "ActivityState",
        "WindowFocus",
        "KeyInput",
        "MouseMove",
        "MouseClick",
        "Scroll",
    }


def test_pause_switch_follows_the_control_file_and_signals(tmp_path: Any) -> None:
    switch = PauseSwitch(tmp_path / "paused")
    assert not switch.paused()
    (tmp_path / "paused").touch()
    assert switch.paused()
    (tmp_path / "paused").unlink()
    switch.pause()
    assert switch.paused()
    switch.resume()
    assert not switch.paused()


def test_chunker_reset_forgets_held_modifiers() -> None:
    chunker = KeyChunker()
    chunker.press(Key(name="ctrl"), T0)
    chunker.reset()
    assert chunker.press(Key(char="s"), T0 + 1) == []
