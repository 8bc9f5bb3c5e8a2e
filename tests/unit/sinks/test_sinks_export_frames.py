"""The computer-use export's pure parts: PyAutoGUI actions and episode rows."""

from __future__ import annotations

from typing import Any

import pytest

from sinks.export_frames import Frame, episode_steps, pyautogui_action
from tests.unit.sinks.sinks_samples import action


@pytest.mark.parametrize(
    "kind, fields, code, structured",
    [
        (
            "click",
            {"x": 960, "y": 270},
            "click(x=0.5000, y=0.2500, button='left')",
            {"action_type": "click", "x": 0.5, "y": 0.25, "button": "left"},
        ),
        ("typing", {"text": "hi\n"}, "write('hi\\n')", {"action_type": "write", "text": "hi\n"}),
        (
            "typing",
            {"text": "\b\bok"},
            "press('backspace')\npress('backspace')\nwrite('ok')",
            {"action_type": "write"},
        ),
        (
            "shortcut",
            {"chord": "ctrl+shift+p"},
            "hotkey('ctrl', 'shift', 'p')",
            {"action_type": "hotkey", "keys": ["ctrl", "shift", "p"]},
        ),
        ("scroll", {"dy": 3}, "scroll(-3)", {"action_type": "scroll"}),
        (
            "command",
            {"command": "ls -la"},
            "write('ls -la')\npress('enter')",
            {"action_type": "write", "keys": ["enter"], "text": "ls -la"},
        ),
    ],
)
def test_actions_in_pyautogui_form(
    kind: str, fields: dict[str, Any], code: str, structured: dict[str, Any]
) -> None:
    step = {**action(kind), **fields}
    out = pyautogui_action(step, 1920, 1080)
    assert out["action_code"] == code
    assert {k: out[k] for k in structured} == structured


def test_coordinates_stay_in_the_unit_square_and_need_a_frame() -> None:
    step = {**action("click"), "x": 2500, "y": -4}
    assert (pyautogui_action(step, 1920, 1080)["x"], pyautogui_action(step, 1920, 1080)["y"]) == (
        1.0,
        0.0,
    )
    assert pyautogui_action(step, None, None)["x"] is None


def test_withheld_text_gives_no_code() -> None:
    assert pyautogui_action({**action("typing"), "text": None}, 10, 10)["action_code"] == ""


def test_each_step_gets_the_frame_before_it_opened_once() -> None:
    acts = [action("click", n=0), action("typing", n=1)]
    acts[0]["observation_ref"] = acts[1]["observation_ref"] = "sha256:" + "ab" * 32
    episode = {
        "trajectory_id": "t1",
        "subject_id": "s1",
        "org_id": "org1",
        "device_id": "d1",
        "consent_version": 2,
        "actions": acts,
    }
    opened: list[str | None] = []

    def frame(subject: str, ref: str | None) -> Frame | None:
        opened.append(ref)
        return Frame(b"png", "image/png", 10, 12, {})

    rows = [row for row, _ in episode_steps(episode, frame)]
    assert len(opened) == 1
    assert [r["step_index"] for r in rows] == [0, 1]
    assert rows[0]["image"] == {"bytes": b"png", "path": "ab" * 32 + ".png"}
    assert (rows[0]["x"], rows[0]["y"]) == (0.5, 0.5)
    assert rows[0]["frame_width"] == 10 and rows[1]["consent_version"] == 2
