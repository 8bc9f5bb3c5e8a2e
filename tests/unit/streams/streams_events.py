"""Builders of contract-form capture events for the stream logic tests."""

from __future__ import annotations

import json
from typing import Any

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
# 2024-03-04 09:00:00 UTC: a Monday morning, minute-aligned.
T0 = 1_709_542_800 * SECOND


class Device:
    """A capture device of one subject that numbers its events in order."""

    def __init__(self, device_id: str = "dev-1", subject_id: str = "subj-1") -> None:
        self.device_id = device_id
        self.subject_id = subject_id
        self.seq = 0

    def event(
        self,
        ts: int,
        payload: dict[str, Any],
        app: str = "editor",
        title: str | None = "main.py",
        redactions: list[str] | None = None,
    ) -> dict[str, Any]:
        """Return the next event of this device at event time ``ts``."""
        self.seq += 1
        return {
            "event_id": f"{self.device_id}-{self.seq:08d}",
            "org_id": "org-1",
            "subject_id": self.subject_id,
            "device_id": self.device_id,
            "seq": self.seq,
            "ts": ts,
            "received_ts": ts + 5_000,
            "app": {"app_name": app, "window_title": title, "url_host": None},
            "payload": payload,
            "redactions": list(redactions or []),
            "consent_version": 1,
        }


def key(
    k: str | None = None,
    text: str | None = None,
    mods: tuple[str, ...] = (),
    count: int = 1,
    secure: bool = False,
) -> dict[str, Any]:
    """A KeyInput payload."""
    return {
        "type": "KeyInput",
        "key": k,
        "text": text,
        "modifiers": list(mods),
        "is_secure_field": secure,
        "count": count,
    }


def move(*points: tuple[int, int, int]) -> dict[str, Any]:
    """A MouseMove payload from ``(dt_ms, x, y)`` points."""
    return {"type": "MouseMove", "path": [{"dt_ms": d, "x": x, "y": y} for d, x, y in points]}


def click(x: int, y: int, button: str = "left") -> dict[str, Any]:
    """A MouseClick payload."""
    return {"type": "MouseClick", "button": button, "x": x, "y": y, "double": False}


def scroll(dx: int, dy: int) -> dict[str, Any]:
    """A Scroll payload."""
    return {"type": "Scroll", "dx": dx, "dy": dy}


def focus(previous: str | None) -> dict[str, Any]:
    """A WindowFocus payload."""
    return {"type": "WindowFocus", "previous_app_name": previous}


def frame(ref: str) -> dict[str, Any]:
    """A ScreenFrame payload."""
    return {
        "type": "ScreenFrame",
        "frame_id": ref,
        "ref": ref,
        "width": 1920,
        "height": 1080,
        "phash": "0" * 16,
    }


def command(line: str, exit_code: int | None = 0) -> dict[str, Any]:
    """A TerminalCommand payload."""
    return {"type": "TerminalCommand", "command": line, "exit_code": exit_code, "cwd_hash": "c"}


def edit(diff: str | None) -> dict[str, Any]:
    """An IdeEdit payload."""
    return {
        "type": "IdeEdit",
        "path_hash": "p",
        "language": "python",
        "chars_inserted": 1,
        "chars_deleted": 0,
        "diff": diff,
    }


def activity(state: str) -> dict[str, Any]:
    """An ActivityState payload."""
    return {"type": "ActivityState", "state": state}


def through_json(state: Any, cls: Any) -> Any:
    """Simulate a worker restart: the state as stored in a table, read back."""
    return None if state is None else cls.from_dict(json.loads(json.dumps(state.to_dict())))
